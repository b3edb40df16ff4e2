"""Do vidlab's fast inference paths give the same answers as the plain fp32 model on real decoded clips?

Runs ``vidlab test`` on a trained checkpoint once per inference path, as a user would (each a fresh process, the
checkpoint's own test sampler, pipeline and view averaging):

- ``plain fp32``: ``--precision fp32 test.fold_bn=false test.memory_format=contiguous`` (the eager model as trained);
- ``fp32``: BatchNorm folded, channels-last (``--precision fp32``);
- ``bf16``: ``--precision bf16`` (skipped on CPUs that emulate bf16);
- ``fp32 compiled``: ``--precision fp32 --compile``;
- ``onnxruntime``: ``--backend onnxruntime`` (needs ``vidlab[export]``);

then compares each path's per-video scores (``--out`` JSON) with the plain fp32 ones: top-1 agreement, the mean and
largest absolute difference of the class probabilities, and the top-1 accuracy against the labels; it also gives the
wall time of each ``vidlab test`` (decoding included). The default is the demo's checkpoint on the SynthActions test
split (``make demo`` first)::

    .venv/bin/python benchmarks/inference_agreement.py [--checkpoint work_dirs/demo/best.pth] [--split test]

Prints a markdown table and ``RESULT min_top1_agreement=<float> max_mean_abs_prob_diff=<float>``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vidlab.engine.precision import cpu_has_native_bf16

PATHS = {
    "plain fp32": ["--precision", "fp32", "test.fold_bn=false", "test.memory_format=contiguous"],
    "fp32": ["--precision", "fp32"],
    "bf16": ["--precision", "bf16"],
    "fp32 compiled": ["--precision", "fp32", "--compile"],
    "onnxruntime": ["--backend", "onnxruntime"],
}


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Scores as probabilities: rows already summing to 1 (``average_clips: prob``) are kept, logits go through a
    softmax."""
    if np.allclose(scores.sum(1), 1, atol=1e-3) and (scores >= 0).all():
        return scores
    e = np.exp(scores - scores.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def run(checkpoint: str, split: str, extra: list[str], out: Path) -> float:
    cmd = [sys.executable, "-m", "vidlab", "test", "--checkpoint", checkpoint, "--split", split, "--out", str(out)]
    t0 = time.perf_counter()
    r = subprocess.run([*cmd, *extra], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd + extra)} failed:\n{r.stderr}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="work_dirs/demo/best.pth")
    ap.add_argument("--split", default="test")
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    paths = [p for p in args.paths if p != "bf16" or cpu_has_native_bf16()]
    if "plain fp32" not in paths:
        paths.insert(0, "plain fp32")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in paths:
            out = Path(tmp) / f"{name.replace(' ', '_')}.json"
            seconds = run(args.checkpoint, args.split, PATHS[name], out)
            doc = json.loads(out.read_text())
            results[name] = {"seconds": seconds, "scores": np.asarray(doc["scores"]), "labels": doc["labels"]}
    base = results["plain fp32"]
    p0 = probabilities(base["scores"])
    labels = np.asarray(base["labels"]).reshape(len(p0), -1)[:, 0]
    print(f"{args.checkpoint}, {args.split} split: {len(p0)} videos, {p0.shape[1]} classes")
    print("| path | top-1 agreement with plain fp32 | mean abs prob diff | max abs prob diff | top-1 accuracy "
          "| vidlab test s |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    rows = {}
    for name, r in results.items():
        p = probabilities(r["scores"])
        diff = np.abs(p - p0)
        rows[name] = {
            "top1_agreement": float((p.argmax(1) == p0.argmax(1)).mean()),
            "mean_abs_prob_diff": float(diff.mean()),
            "max_abs_prob_diff": float(diff.max()),
            "top1_accuracy": float((p.argmax(1) == labels).mean()),
            "seconds": r["seconds"],
        }
        v = rows[name]
        print(
            f"| {name} | {v['top1_agreement']:.4f} | {v['mean_abs_prob_diff']:.1e} | {v['max_abs_prob_diff']:.1e} "
            f"| {v['top1_accuracy']:.4f} | {v['seconds']:.1f} |"
        )
    others = [v for k, v in rows.items() if k != "plain fp32"]
    print(
        f"RESULT min_top1_agreement={min(v['top1_agreement'] for v in others):.4f} "
        f"max_mean_abs_prob_diff={max(v['mean_abs_prob_diff'] for v in others):.2e}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
