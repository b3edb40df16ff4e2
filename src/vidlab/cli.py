"""`vidlab <command>`: thin argument parsing; the work happens in vidlab.engine and vidlab.data."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vidlab.cli_data import _add_data_parser
from vidlab.cli_tools import (
    _add_caption_eval_parser,
    _add_convert_parser,
    _add_eval_ava_parser,
    _add_export_parser,
    _add_fuse_parser,
    _add_report_parser,
    _add_suite_parser,
    _add_viz_mae_parser,
    _mapping,
)
from vidlab.errors import InputError, VidlabError, one_line


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


def _add_train_test_parsers(sub) -> None:
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


def _add_model_info_parsers(sub) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vidlab", description="Video understanding toolbox.")
    sub = p.add_subparsers(dest="command", required=True)

    _add_data_parser(sub)
    _add_train_test_parsers(sub)
    _add_predict_parser(sub)
    _add_extract_parser(sub)
    _add_model_info_parsers(sub)
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
