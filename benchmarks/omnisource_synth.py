"""OmniSource-style joint training on SynthActions: trimmed videos plus web-like images and untrimmed videos.

The training list is split in two halves. The first half is the trimmed-video source (`clips`); from the second half
come the extra sources: the middle frame of each video as a still image (`web_images`, one-frame clips), and the
videos themselves as untrimmed videos sampled as clips (`web_videos`). Runs, with the demo's TSM-R18 recipe and
the same seed: clips only, clips + images, clips + images + untrimmed videos. Each run's test top-1 of its best
checkpoint and the last epoch's per-source training loss and top-1 are printed.

Usage:
    vidlab data synth --out data/synth
    python benchmarks/omnisource_synth.py [--root data/synth] [--work-root DIR] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_temporal import run  # noqa: E402  (train, then test best.pth -> test_results.json)

CONFIG = "configs/recognition/tsm_r18_synth.yaml"


def prepare(root: Path, out: Path) -> None:
    """``clips.txt`` / ``rest.txt`` (halves of the training list, as paths under ``root``) and the images."""
    from PIL import Image

    from vidlab.data.decode import VideoReader

    lines = (root / "train.txt").read_text().splitlines()
    out.mkdir(parents=True, exist_ok=True)
    (out / "clips.txt").write_text("\n".join(lines[::2]) + "\n")
    (out / "rest.txt").write_text("\n".join(lines[1::2]) + "\n")
    images = []
    for line in lines[1::2]:
        rel, label = line.split()
        name = Path(rel).with_suffix(".jpg").name
        if not (out / name).is_file():
            with VideoReader(root / rel) as reader:
                Image.fromarray(reader.read([reader.num_frames // 2])[0]).save(out / name, quality=90)
        images.append(f"{name} {label}")
    (out / "images.txt").write_text("\n".join(images) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="data/synth")
    ap.add_argument("--work-root", default="work_dirs/omnisource")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--runs", nargs="+", type=int, default=[0, 1, 2], help="which runs (0, 1, 2: as listed above)")
    args = ap.parse_args()
    root, work = Path(args.root).resolve(), Path(args.work_root)
    sources = work / "sources"
    prepare(root, sources)
    images = {"name": "web_images", "root": str(sources), "format": "image", "train_list": "images.txt",
              "batch_size": 8, "loss_weight": 0.5}  # fmt: skip
    videos = {"name": "web_videos", "root": str(root), "train_list": str(sources / "rest.txt"), "batch_size": 8,
              "loss_weight": 0.5}  # fmt: skip
    base = [f"data.root={root}", f"data.train_list={sources / 'clips.txt'}", "data.source_name=clips",
            f"train.epochs={args.epochs}"]  # fmt: skip
    runs = {
        "clips only": base,
        "clips + images": base + [f"data.sources=[{json.dumps(images)}]"],
        "clips + images + untrimmed videos": base + [f"data.sources=[{json.dumps(images)}, {json.dumps(videos)}]"],
    }
    rows = {}
    for i, (name, overrides) in enumerate(runs.items()):
        if i not in args.runs:
            continue
        result = run(CONFIG, overrides, work / f"run{i}")
        last = json.loads((work / f"run{i}" / Path(CONFIG).stem / "metrics.jsonl").read_text().splitlines()[-1])
        rows[name] = (result, last)
    print("| sources | test top-1 | per-source training loss / top-1 (last epoch) | train minutes |")
    print("|---|---|---|---|")
    for name, (result, last) in rows.items():
        per = ", ".join(
            f"{k[6:-5]} {last[k]:.3f} / {last.get(k[:-5] + '_top1', float('nan')):.3f}"
            for k in last
            if k.startswith("train_") and k.endswith("_loss")
        )
        print(f"| {name} | {result['test']['top1']:.4f} | {per or '-'} | {result['train_minutes']:.1f} |")
    print("RESULT " + " ".join(f"run{i}_top1={r[0]['test']['top1']:.4f}" for i, r in zip(args.runs, rows.values())))


if __name__ == "__main__":
    main()
