"""Linear probing on SynthActions: how much do a trained backbone's frozen features carry, against a randomly
initialised backbone of the same architecture?

For each checkpoint (a trained one, e.g. the demo's ``best.pth``, and the same model at its random init, written
here), ``vidlab extract`` writes the pooled features of the train/val/test videos, then a linear classifier is
trained on them (``configs/linear_probe/features_synth.yaml``, ``data.format: features``) and tested.

Usage:
    make demo                                   # or any trained SynthActions checkpoint
    python benchmarks/linear_probe.py --trained work_dirs/demo/best.pth [--work-root DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

PROBE = "configs/linear_probe/features_synth.yaml"


def vidlab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidlab", *args], check=True, capture_output=True, text=True)


def random_init(trained: Path, out: Path) -> Path:
    """The trained checkpoint's model at its random init (seed 0), described like the trained one."""
    from vidlab.engine.builders import build_model, config_from_checkpoint
    from vidlab.engine.checkpoint import save_checkpoint
    from vidlab.engine.inference import checkpoint_meta_of

    meta = checkpoint_meta_of(trained)
    torch.manual_seed(0)
    model = build_model(config_from_checkpoint(meta))
    save_checkpoint({"model": model.state_dict(), "meta": meta}, out)
    return out


def probe(checkpoint: Path, root: Path, work: Path, overrides: list[str]) -> dict:
    feats = work / "features"
    t0 = time.time()
    for split in ("train", "val", "test"):
        vidlab(
            "extract",
            "--checkpoint",
            str(checkpoint),
            "--list",
            str(root / f"{split}.txt"),
            "--root",
            str(root),
            "--out",
            str(feats),
        )
    extract_min = (time.time() - t0) / 60
    dim = int(next(iter((feats / "index.csv").read_text().splitlines()[1:])).split(",")[2].split("x")[-1])
    common = [f"data.root={root}", f"data.features_dir={feats}", f"model.kwargs={{in_features: {dim}}}", *overrides]
    vidlab("train", PROBE, f"work_dir={work / 'probe'}", *common)
    out = work / "probe" / "test_results.json"
    vidlab(
        "test",
        PROBE,
        f"work_dir={work / 'probe'}",
        *common,
        "--checkpoint",
        str(work / "probe" / "best.pth"),
        "--out",
        str(out),
    )
    return {**json.loads(out.read_text())["metrics"], "extract_minutes": extract_min, "dim": dim}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trained", required=True, help="a trained SynthActions checkpoint (vidlab train's best.pth)")
    ap.add_argument("--root", default="data/synth")
    ap.add_argument("--work-root", default="work_dirs/linear_probe")
    ap.add_argument("overrides", nargs="*", help="dotted overrides of the probe recipe")
    args = ap.parse_args()
    work, root, trained = Path(args.work_root), Path(args.root), Path(args.trained)
    work.mkdir(parents=True, exist_ok=True)
    rows = {
        "trained": probe(trained, root, work / "trained", args.overrides),
        "random init": probe(random_init(trained, work / "random_init.pth"), root, work / "random", args.overrides),
    }
    print("| backbone (frozen) | test top-1 | top-1 on direction pairs | mean class acc | extract (min) |")
    print("|---|---|---|---|---|")
    for name, m in rows.items():
        print(
            f"| {name} | {m['top1']:.4f} | {m.get('paired_top1', float('nan')):.4f} | {m['mean_class_acc']:.4f} "
            f"| {m['extract_minutes']:.2f} |"
        )
    print("RESULT " + " ".join(f"{k.replace(' ', '_')}_top1={m['top1']:.4f}" for k, m in rows.items()))


if __name__ == "__main__":
    main()
