"""Long-term video on SynthActions-Long: whole-video sparse sampling and sliding windows against a single short clip.

Trains each recipe with `vidlab train` (same data, schedule and seed), tests its best checkpoint on the test split,
and prints one table. The activity of a SynthActions-Long video is the order of three steps that every video shows
once each, so a single 8-frame clip sees mostly one step; the whole-video model (32 frames over the video) and the
window model (16 frames in each 90 s window, one every 45 s, window probabilities averaged per video) can see the
order. The regression recipe predicts when the fading_in step starts; its MSE is compared with predicting the
training mean.

Usage:
    vidlab data synth --task long --out data/synth_long
    python benchmarks/longterm_synth.py [key=value ...] [--work-root DIR] [--only clip8 whole32 ...] [--collect]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth_temporal import run  # noqa: E402  (train, then test best.pth)

RECIPES = {
    "clip8": "configs/longterm/trn_r18_clip8_synth_long.yaml",
    "whole32": "configs/longterm/trn_r18_whole32_synth_long.yaml",
    "windows16": "configs/longterm/trn_r18_windows_synth_long.yaml",
    "fade_start": "configs/longterm/trn_r18_whole16_fade_start.yaml",
}


def mean_baseline_mse(root: Path) -> float:
    """The test MSE of predicting the training list's mean fade_start."""

    def values(split: str) -> np.ndarray:
        return np.array(
            [float(line.split()[1]) for line in (root / f"{split}_fade_start.txt").read_text().splitlines()]
        )

    return float(((values("test") - values("train").mean()) ** 2).mean())


def collected(work: Path) -> dict:
    """The result of a finished run (as ``run`` returns it): its test_results.json and metrics.jsonl."""
    history = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    test = json.loads((work / "test_results.json").read_text())["metrics"]
    return {"test": test, "train_minutes": sum(h["train_time_s"] for h in history) / 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-root", default="work_dirs/longterm")
    ap.add_argument("--root", default="data/synth_long")
    ap.add_argument("--only", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument("--collect", action="store_true", help="only print the table of runs already in --work-root")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.collect:
        rows = {k: collected(Path(args.work_root) / Path(RECIPES[k]).stem) for k in args.only}
    else:
        overrides = [f"data.root={args.root}", *args.overrides]
        rows = {k: run(RECIPES[k], overrides, Path(args.work_root)) for k in args.only}
    print("| recipe | test top-1 | mean class acc | MSE | predict-the-mean MSE | train minutes |")
    print("|---|---|---|---|---|---|")
    for key, r in rows.items():
        m = r["test"]
        if "mse" in m:
            cells = f"| | | {m['mse']:.4f} | {mean_baseline_mse(Path(args.root)):.4f} "
        else:
            cells = f"| {m['top1']:.4f} | {m['mean_class_acc']:.4f} | | "
        print(f"| {Path(RECIPES[key]).stem} {cells}| {r['train_minutes']:.1f} |")
    top1 = {k: r["test"]["top1"] for k, r in rows.items() if "top1" in r["test"]}
    print("RESULT " + " ".join(f"{k}_top1={v:.4f}" for k, v in top1.items()))


if __name__ == "__main__":
    main()
