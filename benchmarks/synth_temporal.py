"""2D-backbone families on SynthActions with the same recipe: does temporal modelling separate the direction pairs?

Trains each recipe with `vidlab train` (same data, schedule, seed), then evaluates its best checkpoint on
the test split, and prints top-1 overall and on the direction-paired classes (left/right, up/down,
clockwise/counter-clockwise, growing/shrinking, fading in/out), whose members differ only in the direction
of time. TSN averages per-frame features, so it is blind to frame order.

Usage:
    vidlab data synth --out data/synth
    python benchmarks/synth_temporal.py [key=value ...] [--work-root DIR] [--configs configs/recognition/X.yaml ...]

The default configs are TSN and TSM; the TIN, TANet and TRN recipes differ from them only in the model. To start
every model from a trained TSN (2D features that carry no temporal order), pass
``model.pretrained=<work root>/tsn_r18_synth/best.pth`` (the temporal modules keep their fresh init).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DEFAULT = ["configs/recognition/tsn_r18_synth.yaml", "configs/recognition/tsm_r18_synth.yaml"]


def run(config: str, overrides: list[str], work_root: Path, reuse: bool = False) -> dict:
    """Train ``config`` in ``work_root/<config stem>``, test its best checkpoint; ``reuse``: a run whose test results
    are already there is read, not redone."""
    work = work_root / Path(config).stem
    out = work / "test_results.json"
    if reuse and out.is_file():
        return _result(work, out)
    cmd = [sys.executable, "-m", "vidlab", "train", config, f"work_dir={work}", *overrides]
    subprocess.run(cmd, check=True)
    cmd = [
        sys.executable,
        "-m",
        "vidlab",
        "test",
        config,
        f"work_dir={work}",
        *overrides,
        "--checkpoint",
        str(work / "best.pth"),
        "--out",
        str(out),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return _result(work, out)


def _result(work: Path, out: Path) -> dict:
    doc = json.loads(out.read_text())
    history = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    return {"test": doc["metrics"], "train_minutes": sum(h["train_time_s"] for h in history) / 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", nargs="+", default=DEFAULT)
    ap.add_argument("--work-root", default="work_dirs/synth_temporal")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    misplaced = [c for c in args.configs if "=" in c and not c.endswith((".yaml", ".yml"))]
    if misplaced:
        ap.error(f"key=value overrides go before --configs (got {misplaced} among the configs)")
    rows = {c: run(c, args.overrides, Path(args.work_root)) for c in args.configs}
    print("| recipe | test top-1 | test top-1, direction-paired classes | mean class acc | train minutes |")
    print("|---|---|---|---|---|")
    for c, r in rows.items():
        m = r["test"]
        print(
            f"| {Path(c).stem} | {m['top1']:.4f} | {m['paired_top1']:.4f} | {m['mean_class_acc']:.4f} "
            f"| {r['train_minutes']:.1f} |"
        )
    paired = [r["test"]["paired_top1"] for r in rows.values()]
    print(f"RESULT paired_gap={paired[-1] - paired[0]:.4f}")


if __name__ == "__main__":
    main()
