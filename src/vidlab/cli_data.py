"""`vidlab data ...`: dataset generators and annotation converters (argument parsing; the work is in vidlab.data)."""

from __future__ import annotations

from pathlib import Path

from vidlab.errors import InputError


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
