"""Speed of vidlab's AVA frame-mAP evaluator against MMAction2 1.2.0's ``ava_eval`` on the same files.

Generates AVA-like files (deterministic): keyframes of 1 s over ``--videos`` videos of ``--seconds`` s, 1-5 people
per keyframe with 1-3 of AVA's 80 actions each, and predictions as a detector writes them: each person's box
jittered, scored for all 80 classes (``%.4f``, like MMAction2's ``results2csv``). Times, for the same files,

* vidlab: ``read_ava_csv`` of both files + ``frame_map`` (protocol ``mmaction2``, the same result as MMAction2;
  the other protocols are timed too), median of ``--repeats`` runs;
* MMAction2: ``ava_eval(..., 'mAP', ...)`` (reading included, its own 32-process pool), ``--mm-repeats`` runs,
  in the reference environment (``--mm-python``; ``refshim`` from ``--refshim``).

and prints a markdown row with the ratio and both times scaled linearly to AVA val scale (``--project-rows``,
~10M prediction rows), then ``RESULT ratio=...``. Usage::

    python benchmarks/ava_eval.py [--videos 22 --seconds 100] [--repeats 3] [--mm-repeats 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vidlab.metrics.ava import AVA_ACTION_NAMES, frame_map, read_ava_csv

REFS = Path(__file__).resolve().parents[1].parent / "shared" / "refs"
MM_SNIPPET = """
import contextlib, io, json, sys, time
sys.path.insert(0, sys.argv[1])
import refshim  # noqa: F401  (must precede mmaction)
import numpy as np
np.NAN = np.nan  # removed in NumPy 2, reached by MMAction2 for a class without ground truth
from mmaction.evaluation.functional.ava_utils import ava_eval
times = []
for _ in range(int(sys.argv[5])):
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        res = ava_eval(sys.argv[3], "mAP", sys.argv[4], sys.argv[2], None, verbose=False)
    times.append(time.perf_counter() - t)
print(json.dumps({"times": times, "map": float(res["overall"])}))
"""


def make_files(folder: Path, videos: int, seconds: int, seed: int = 0) -> tuple[Path, Path, Path, int]:
    rng = np.random.default_rng(seed)
    gt, pred = [], []
    for v in range(videos):
        vid = f"v{v:010d}"
        for s in range(902, 902 + seconds):
            for p in range(int(rng.integers(1, 6))):
                x1, y1 = rng.random(2) * 0.6
                x2, y2 = x1 + 0.1 + rng.random() * 0.3, y1 + 0.2 + rng.random() * 0.3
                acts = rng.choice(np.arange(1, 81), size=int(rng.integers(1, 4)), replace=False)
                gt += [f"{vid},{s:04d},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{a},{p}\n" for a in acts]
                box = np.array([x1, y1, x2, y2]) + rng.normal(0, 0.02, 4)
                box[2:] = np.maximum(box[2:], box[:2] + 0.01)  # MMAction2 fails on an inverted box
                score = rng.random(80) ** 3
                score[acts - 1] = np.minimum(1, score[acts - 1] + 0.5)
                head = f"{vid},{s:04d},{box[0]:.4f},{box[1]:.4f},{box[2]:.4f},{box[3]:.4f}"
                pred += [f"{head},{c + 1},{score[c]:.4f}\n" for c in range(80)]
    paths = folder / "gt.csv", folder / "pred.csv", folder / "labelmap.pbtxt"
    paths[0].write_text("".join(gt))
    paths[1].write_text("".join(pred))
    paths[2].write_text("".join(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n' for i, n in enumerate(AVA_ACTION_NAMES, 1)))
    return *paths, len(pred)


def time_vidlab(gt, pred, labelmap, protocol, repeats):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = frame_map(read_ava_csv(gt), read_ava_csv(pred), labelmap, protocol=protocol)
        times.append(time.perf_counter() - t)
    return statistics.median(times), result.map


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=22)
    ap.add_argument("--seconds", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mm-repeats", type=int, default=1)
    ap.add_argument("--mm-python", default="/tmp/refs/mm/bin/python", help="python of the MMAction2 environment")
    ap.add_argument("--refshim", default=str(REFS), help="folder holding refshim.py")
    ap.add_argument("--project-rows", type=float, default=10e6, help="rows to scale the times to (AVA val: ~10M)")
    ap.add_argument("--work", default=None, help="folder for the generated files (default: a temporary one)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.work or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        gt, pred, labelmap, rows = make_files(folder, args.videos, args.seconds)
        print(f"{rows} prediction rows, {sum(1 for _ in open(gt))} ground-truth rows, files in {folder}")
        ours = {p: time_vidlab(gt, pred, labelmap, p, args.repeats) for p in ("mmaction2", "activitynet", "pyslowfast")}
        for p, (t, m) in ours.items():
            print(f"vidlab {p:<11}: median {t:.3f} s of {args.repeats}, mAP {m:.6f}")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        out = subprocess.run([args.mm_python, "-c", MM_SNIPPET, args.refshim, str(gt), str(pred), str(labelmap),
                              str(args.mm_repeats)], capture_output=True, text=True, env=env, check=True)  # fmt: skip
        mm = json.loads(out.stdout.strip().splitlines()[-1])
        mm_time = statistics.median(mm["times"])
        ours_time, ours_map = ours["mmaction2"]
        runs = ", ".join(f"{t:.2f}" for t in mm["times"])
        print(f"MMAction2 ava_eval: {mm_time:.3f} s ({runs}), mAP {mm['map']:.6f}")
        print(f"same mAP: |difference| = {abs(mm['map'] - ours_map):.2e}")
        scale = args.project_rows / rows
        ratio = mm_time / ours_time
        print("| prediction rows | vidlab (s) | MMAction2 (s) | ratio | at ~10M rows: vidlab (s) | MMAction2 (s) |")
        print("|---|---|---|---|---|---|")
        print(f"| {rows:,} | {ours_time:.2f} | {mm_time:.2f} | **{ratio:.1f}x** | {ours_time * scale:.0f} | "
              f"{mm_time * scale:.0f} |")  # fmt: skip
        print(f"RESULT ratio={ratio:.1f} vidlab_s={ours_time:.3f} mmaction2_s={mm_time:.3f} rows={rows}")


if __name__ == "__main__":
    sys.exit(main())
