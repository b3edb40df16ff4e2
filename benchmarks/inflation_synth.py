"""Image-checkpoint starts on SynthActions: does a 2D network trained on frames, inflated into a video network, start
and end better than the same video network from scratch with the same recipe?

Two pairs (each step skipped when its output exists, so an interrupted run resumes):

1. CNN: a TSN-ResNet18 trained on single frames (``configs/inflation/tsn_r18_synth.yaml``) -> a 3D ResNet-18 in
   SlowOnly's layout (``configs/inflation/slowonly_r18_synth.yaml``), inflated (``model.pretrained_2d``,
   MMAction2's ``pretrained2d`` rule) and from scratch;
2. tokens: a tiny ViT trained on frames (TimeSformer space-only, ``configs/inflation/vit_frames_synth.yaml``) -> a
   divided space-time TimeSformer (``configs/inflation/timesformer_tiny_synth.yaml``), inflated (MMAction2 style)
   and from scratch.

Every run is tested on the test split with its best-on-validation checkpoint. Prints a markdown table (validation
top-1 after the first and the last epoch, test top-1, train minutes) and a RESULT line, and writes ``curves.png``
(validation top-1 per epoch).

Usage:
    python benchmarks/inflation_synth.py [--work-root work_dirs/inflation] [--pairs cnn vit]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videomae_synth import history, train_and_test  # noqa: E402

PAIRS = {  # name: (2D recipe, video recipe)
    "cnn": ("configs/inflation/tsn_r18_synth.yaml", "configs/inflation/slowonly_r18_synth.yaml"),
    "vit": ("configs/inflation/vit_frames_synth.yaml", "configs/inflation/timesformer_tiny_synth.yaml"),
}


def run_pair(name: str, work: Path) -> dict[str, dict]:
    image_cfg, video_cfg = PAIRS[name]
    image = train_and_test(image_cfg, work / f"{name}_2d", [])
    ckpt = work / f"{name}_2d" / "best.pth"
    inflated = train_and_test(
        video_cfg, work / f"{name}_inflated", [f"model.pretrained={ckpt}", "model.pretrained_2d=true"]
    )
    scratch = train_and_test(video_cfg, work / f"{name}_scratch", [])
    return {f"{name}_2d": image, f"{name}_inflated": inflated, f"{name}_scratch": scratch}


def val_curve(work: Path) -> list[float]:
    return [h["val_top1"] for h in history(work) if "val_top1" in h]


def plot(work: Path, names: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        for run, style in (("2d", ":"), ("inflated", "-"), ("scratch", "--")):
            curve = val_curve(work / f"{name}_{run}")
            ax.plot(range(1, len(curve) + 1), curve, style, marker="o", label=run)
        ax.axhline(1 / 12, color="gray", lw=0.8, label="chance")
        ax.set(title=f"{name}: validation top-1", xlabel="epoch", ylabel="top-1", ylim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(work / "curves.png", dpi=110)
    return work / "curves.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-root", default="work_dirs/inflation")
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    args = ap.parse_args()
    work = Path(args.work_root)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = {}
    for name in args.pairs:
        results.update(run_pair(name, work))
    print("| run | validation top-1, epoch 1 | validation top-1, last epoch | test top-1 | train minutes |")
    print("|---|---|---|---|---|")
    for run, r in results.items():
        curve = val_curve(work / run)
        print(f"| {run} | {curve[0]:.4f} | {curve[-1]:.4f} | {r['top1']:.4f} | {r['train_minutes']:.1f} |")
    print(f"curves: {plot(work, args.pairs)}")
    better = [
        n
        for n in args.pairs
        if val_curve(work / f"{n}_inflated")[0] > val_curve(work / f"{n}_scratch")[0]
        and results[f"{n}_inflated"]["top1"] > results[f"{n}_scratch"]["top1"]
    ]
    print(
        "RESULT "
        + " ".join(f"{run}_top1={r['top1']:.4f}" for run, r in results.items())
        + f" inflated_better={len(better)}/{len(args.pairs)} minutes={(time.time() - t0) / 60:.1f}"
    )


if __name__ == "__main__":
    main()
