"""Image-checkpoint starts on SynthActions: does a 2D network trained on frames, inflated into a video network, start
and end better than the same video network from scratch with the same recipe?

Two pairs (each step skipped when its output exists, so an interrupted run resumes):

1. CNN: a TSN-ResNet18 trained on single frames of the SynthActions training videos
   (``configs/inflation/tsn_r18_synth.yaml``, action labels) -> a 3D ResNet-18 in SlowOnly's layout
   (``configs/inflation/slowonly_r18_synth.yaml``), inflated (``model.pretrained_2d``, MMAction2's ``pretrained2d``
   rule) and from scratch;
2. tokens: an image ViT (4x4 patches, 96 wide, 4 blocks; TimeSformer's space-only network on one frame) trained
   as an image classifier -- which shape is the actor -- on 4 frames each of 4,000 other SynthActions videos
   (``vidlab data synth --seed 7``, short clips; 11,200 training images, 32x32), the stand-in for ImageNet
   pre-training: a tiny ViT learns nothing from SynthActions' 700 training videos alone (BENCHMARKS.md), neither
   their action labels nor the actor shape. Its weights start a divided space-time TimeSformer
   (``configs/inflation/timesformer_tiny_synth.yaml``, MMAction2 style), compared with the same from scratch.

Every video run is tested on the test split with its best-on-validation checkpoint. Prints a markdown table
(validation top-1 after the first and the last epoch, test top-1, train minutes) and a RESULT line, and writes
``curves.png`` (validation top-1 per epoch).

Usage:
    python benchmarks/inflation_synth.py [--work-root work_dirs/inflation] [--pairs cnn vit]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from videomae_synth import history, train_and_test  # noqa: E402

PAIRS = {  # name: (2D recipe or None for the image ViT trained here, video recipe)
    "cnn": ("configs/inflation/tsn_r18_synth.yaml", "configs/inflation/slowonly_r18_synth.yaml"),
    "vit": (None, "configs/inflation/timesformer_tiny_synth.yaml"),
}
# the image ViT: TimeSformer's space-only network on one 32x32 frame (the video recipe's ViT)
IMAGE_VIT = {"img_size": 32, "patch_size": 4, "embed_dim": 96, "depth": 4, "num_heads": 4, "num_frames": 1}
MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)  # the recipes' normalization
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def frame_images(root: Path, split: str, shapes: list[str], per_video: int = 4, size: int = 32):
    """``(images, labels)``: ``per_video`` evenly spaced frames of each video of a split, resized to ``size``
    (uint8 ``(N, 3, size, size)``), labelled by the actor's shape (``meta.json``)."""
    from vidlab.data.decode import VideoReader

    info = {v["video"]: v for v in json.loads((root / "meta.json").read_text())["videos"]}
    images, labels = [], []
    for line in (root / f"{split}.txt").read_text().splitlines():
        path = line.split()[0]
        with VideoReader(root / path) as reader:
            frames = reader.read(np.linspace(0, reader.num_frames - 1, per_video).round().astype(int))
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        images.append(x.round().clamp(0, 255).to(torch.uint8))
        labels += [shapes.index(info[path]["actor_shape"])] * per_video
    return torch.cat(images), torch.tensor(labels)


def image_dataset(data: Path):
    """Training and validation images of the image task (generated SynthActions videos, 4 frames each) and the
    shape names."""
    if not (data / "meta.json").is_file():
        cmd = [sys.executable, "-m", "vidlab", "data", "synth", "--out", str(data), "--num-videos", "4000"]
        cmd += ["--seed", "7", "--sizes", "64x48", "--duration", "0.3", "0.5"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shapes = sorted({v["actor_shape"] for v in json.loads((data / "meta.json").read_text())["videos"]})
    return frame_images(data, "train", shapes), frame_images(data, "val", shapes), shapes


def train_image_vit(work: Path, epochs: int = 12, batch: int = 64, lr: float = 1e-3) -> dict:
    """The image pre-training stand-in: a ViT classifying the actor's shape on frames of other SynthActions
    videos (AdamW, cosine decay after one warm-up epoch, horizontal flips). Saves ``best.pth`` (last epoch) and
    ``metrics.jsonl``."""
    from vidlab.models import create_model

    out = work / "vit_2d"
    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    (x, y), (xv, yv), shapes = image_dataset(work / "image_data")
    torch.manual_seed(0)
    model = create_model("timesformer_spaceonly", num_classes=len(shapes), **IMAGE_VIT)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    per_epoch = len(x) // batch
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / per_epoch) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )

    def prep(images: torch.Tensor) -> torch.Tensor:
        return ((images.float() - MEAN) / STD).unsqueeze(2)  # (N, 3, 1, H, W)

    log = (out / "metrics.jsonl").open("w")
    t0 = time.time()
    for epoch in range(1, epochs + 1):
        model.train()
        order, losses = torch.randperm(len(x)), []
        for i in range(per_epoch):
            idx = order[i * batch : (i + 1) * batch]
            clip = prep(x[idx])
            flip = torch.rand(len(idx)) < 0.5
            clip[flip] = clip[flip].flip(-1)
            loss = F.cross_entropy(model(clip), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(prep(xv[j : j + 256])).argmax(1) for j in range(0, len(xv), 256)])
        row = {"epoch": epoch, "loss": sum(losses) / len(losses), "val_top1": float((pred == yv).float().mean())}
        row["train_time_s"] = time.time() - t0
        log.write(json.dumps(row) + "\n")
        log.flush()
        print(f"image ViT epoch {epoch}: loss {row['loss']:.3f} val top-1 {row['val_top1']:.4f}", flush=True)
    torch.save({"model": model.state_dict()}, out / "best.pth")
    result = {"top1": row["val_top1"], "train_minutes": (time.time() - t0) / 60, "epochs": epochs}
    done.write_text(json.dumps(result))
    return result


def run_pair(name: str, work: Path) -> dict[str, dict]:
    image_cfg, video_cfg = PAIRS[name]
    image = train_and_test(image_cfg, work / f"{name}_2d", []) if image_cfg else train_image_vit(work)
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
