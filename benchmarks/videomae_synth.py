"""VideoMAE's data-efficiency claim on SynthActions, on CPU: does masked pre-training on the training videos (labels
unused) make a small ViT learn where it stays at chance from scratch?

Steps (each skipped when its output exists, so an interrupted run resumes):

1. pre-train ``configs/pretrain/videomae_vit_t_synth.yaml`` (tube masking at 75%, raw-pixel targets: see the recipe);
2. fine-tune ``configs/recognition/videomae_vit_t_synth_ft.yaml`` from the pre-trained encoder and from scratch
   (``model.pretrained=null``, otherwise the same recipe), on all training labels and on 10% of them
   (``data.train_fraction=0.1``, stratified by class, with more epochs for the smaller set), each tested on the
   test split with its best-on-validation checkpoint;
3. linear probes (``benchmarks/linear_probe.py``'s recipe) of the frozen pre-trained encoder and of the same
   encoder at its random init: mean-pooled last-block tokens of one clip per video.

Prints a markdown table and a RESULT line and writes ``curves.png`` (pre-training loss; validation top-1 of the four
fine-tuning runs).

Usage:
    python benchmarks/videomae_synth.py [--work-root work_dirs/videomae_synth] [--epochs-10pct 40]
        [--pretrain-config YAML] [--finetune-config YAML] [--pretrain-set KEY=VALUE ...] [--set KEY=VALUE ...]

``--pretrain-set`` overrides the pre-training recipe; ``--set`` every fine-tuning run and the probed encoder (e.g. a
smaller input: ``model.kwargs.img_size=32`` with 32-pixel pipelines).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from linear_probe import probe, random_init  # noqa: E402

PRETRAIN = "configs/pretrain/videomae_vit_t_synth.yaml"
FINETUNE = "configs/recognition/videomae_vit_t_synth_ft.yaml"
RUNS = {  # work-dir name: description
    "ft_100": "pre-trained, 100% labels",
    "scratch_100": "scratch, 100% labels",
    "ft_10": "pre-trained, 10% labels",
    "scratch_10": "scratch, 10% labels",
}


def vidlab(*args: str, log: Path) -> None:
    with open(log, "w") as f:
        subprocess.run([sys.executable, "-m", "vidlab", *args], check=True, stdout=f, stderr=subprocess.STDOUT)


def history(work: Path) -> list[dict]:
    path = work / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def train_and_test(config: str, work: Path, overrides: list[str]) -> dict:
    """Train (unless done), then test the best-on-validation checkpoint on the test split."""
    out = work / "test_results.json"
    if not out.is_file():
        work.mkdir(parents=True, exist_ok=True)
        if not (work / "best.pth").is_file():
            vidlab("train", config, f"work_dir={work}", *overrides, log=work / "stdout.txt")
        vidlab(
            "test", config, f"work_dir={work}", *overrides, "--checkpoint", str(work / "best.pth"), "--out", str(out),
            log=work / "test_stdout.txt",
        )  # fmt: skip
    runs = history(work)
    return {
        **json.loads(out.read_text())["metrics"],
        "train_minutes": sum(h["train_time_s"] for h in runs) / 60,
        "epochs": len(runs),
    }


def encoder_checkpoint(config: str, pretrained: Path, out: Path, overrides: list[str]) -> Path:
    """The fine-tuning network with the pre-trained encoder loaded (as ``model.pretrained`` loads it), saved as a
    self-describing checkpoint for ``vidlab extract``."""
    if out.is_file():
        return out
    from vidlab.config import load_config
    from vidlab.engine.builders import build_model, build_task, checkpoint_meta
    from vidlab.engine.checkpoint import save_checkpoint
    from vidlab.models.convert import load_checkpoint

    cfg = load_config(config, [f"model.pretrained={pretrained}", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg)
    report = load_checkpoint(model, pretrained, strict=False, drop_head=True)
    assert len(report["loaded"]) > 0, report
    save_checkpoint({"model": model.state_dict(), "meta": checkpoint_meta(cfg, build_task(cfg), model)}, out)
    return out


def plot(work: Path, runs: dict[str, Path]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    pre = history(work / "pretrain")
    a.plot([h["epoch"] for h in pre], [h["loss"] for h in pre], label="train")
    val = [h for h in pre if "val_loss" in h]
    a.plot([h["epoch"] for h in val], [h["val_loss"] for h in val], "o-", label="validation")
    a.set(title="VideoMAE pre-training (reconstruction MSE)", xlabel="epoch", ylabel="loss")
    a.legend()
    for name, path in runs.items():
        h = [r for r in history(path) if "val_top1" in r]
        b.plot([r["epoch"] for r in h], [r["val_top1"] for r in h], label=name)
    b.axhline(1 / 12, color="gray", ls=":", label="chance")
    b.set(title="fine-tuning: validation top-1", xlabel="epoch", ylabel="top-1", ylim=(0, 1))
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(work / "curves.png", dpi=110)
    return work / "curves.png"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-root", default="work_dirs/videomae_synth")
    ap.add_argument("--root", default="data/synth")
    ap.add_argument("--epochs-10pct", type=int, default=40, help="fine-tuning epochs on 10%% of the labels")
    ap.add_argument("--skip-probes", action="store_true", help="no linear probes (e.g. for a second process)")
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="fine-tuning runs to do")
    ap.add_argument("--pretrain-config", default=PRETRAIN)
    ap.add_argument("--finetune-config", default=FINETUNE)
    ap.add_argument("--pretrain-set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for pre-training")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every fine-tuning run")
    args = ap.parse_args()
    work = Path(args.work_root)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not (work / "pretrain" / "best.pth").is_file():
        (work / "pretrain").mkdir(exist_ok=True)
        vidlab(
            "train", args.pretrain_config, f"work_dir={work / 'pretrain'}", *args.pretrain_set,
            log=work / "pretrain" / "stdout.txt",
        )  # fmt: skip
    pre = history(work / "pretrain")
    pretrained = work / "pretrain" / "best.pth"
    ten = ["data.train_fraction=0.1", f"train.epochs={args.epochs_10pct}", "train.val_interval=5"]
    overrides = {
        "ft_100": [f"model.pretrained={pretrained}"],
        "scratch_100": ["model.pretrained=null"],
        "ft_10": [f"model.pretrained={pretrained}", *ten],
        "scratch_10": ["model.pretrained=null", *ten],
    }
    runs = {RUNS[k]: (work / k, overrides[k]) for k in RUNS if k in args.runs}
    results = {name: train_and_test(args.finetune_config, path, [*ov, *args.set]) for name, (path, ov) in runs.items()}
    probes = {}
    if not args.skip_probes:
        enc = encoder_checkpoint(args.finetune_config, pretrained, work / "encoder_pretrained.pth", args.set)
        root = Path(args.root)
        probes["pre-trained encoder"] = probe(enc, root, work / "probe_pretrained", [])
        probes["random encoder"] = probe(random_init(enc, work / "encoder_random.pth"), root, work / "probe_random", [])
    curves = plot(work, {name: path for name, (path, _) in runs.items()})
    print(
        f"pre-training: {len(pre)} epochs, {sum(h['train_time_s'] for h in pre) / 60:.1f} min, "
        f"loss {pre[0]['loss']:.4f} -> {pre[-1]['loss']:.4f}"
    )
    print("| run | epochs | test top-1 | top-1 on direction pairs | mean class acc | train (min) |")
    print("|---|---|---|---|---|---|")
    for name, m in results.items():
        print(
            f"| {name} | {m['epochs']} | {m['top1']:.4f} | {m.get('paired_top1', float('nan')):.4f} | "
            f"{m['mean_class_acc']:.4f} | {m['train_minutes']:.1f} |"
        )
    for name, m in probes.items():
        print(f"| linear probe, {name} | 30 | {m['top1']:.4f} | {m.get('paired_top1', float('nan')):.4f} | "
              f"{m['mean_class_acc']:.4f} | |")  # fmt: skip
    print(f"curves: {curves}; total {(time.time() - t0) / 60:.1f} min")
    line = " ".join(f"{k}={results[v]['top1']:.4f}" for k, v in RUNS.items() if v in results)
    line += "".join(f" probe_{k.split()[0].replace('-', '')}={m['top1']:.4f}" for k, m in probes.items())
    print(f"RESULT {line}")


if __name__ == "__main__":
    main()
