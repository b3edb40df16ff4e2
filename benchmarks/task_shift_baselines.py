"""Mini-SEVERE's task-shift columns against trivial baselines: repetition counting against predicting the training
set's mean count, multi-label recognition against scoring every video with the training set's class frequencies.

Reads the lists that ``suites/mini_severe.yaml`` generates (``data/mini_severe/repetition``, ``.../multilabel``)
and, when the suite has run, its result files; prints a markdown table and a RESULT line.

Usage:
    python benchmarks/task_shift_baselines.py [--data data/mini_severe] [--work-dir work_dirs/suites/mini_severe]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vidlab.metrics.baselines import class_prior_map, mean_count_baseline


def _targets(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()[1:]] for line in path.read_text().splitlines() if line.strip()]


def _multi_hot(rows: list[list[float]], num_classes: int) -> np.ndarray:
    out = np.zeros((len(rows), num_classes))
    for i, labels in enumerate(rows):
        out[i, [int(v) for v in labels]] = 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="data/mini_severe")
    p.add_argument("--work-dir", default="work_dirs/suites/mini_severe")
    args = p.parse_args()
    data, results = Path(args.data), Path(args.work_dir) / "results"
    rep_train = [r[0] for r in _targets(data / "repetition" / "train.txt")]
    rep_test = [r[0] for r in _targets(data / "repetition" / "test.txt")]
    count = mean_count_baseline(rep_train, rep_test)
    ml_train = _multi_hot(_targets(data / "multilabel" / "train.txt"), 12)
    ml_test = _multi_hot(_targets(data / "multilabel" / "test.txt"), 12)
    prior = class_prior_map(ml_train, ml_test)
    print("| method | counting mae_norm (lower is better) | counting obo | multi-label mAP |")
    print("|---|---|---|---|")
    print(f"| baseline: mean count {count['prediction']:.0f} / class priors | {count['mae_norm']:.3f} | "
          f"{count['obo']:.3f} | {prior:.3f} |")  # fmt: skip
    for method in ("scratch", "supervised", "videomae"):
        cells = []
        for dataset, keys in (("counting", ("mae_norm", "obo")), ("multilabel", ("mAP",))):
            path = results / f"{method}__{dataset}__default__s0.json"
            metrics = json.loads(path.read_text())["metrics"] if path.is_file() else {}
            cells += [f"{metrics[k]:.3f}" if k in metrics else "-" for k in keys]
        print(f"| {method} | " + " | ".join(cells) + " |")
    print(f"RESULT count_baseline_mae_norm={count['mae_norm']:.4f} count_baseline_obo={count['obo']:.4f} "
          f"prior_map={prior:.4f} test_videos={len(rep_test)}/{len(ml_test)}")  # fmt: skip


if __name__ == "__main__":
    main()
