"""Masked teacher distillation on SynthActions, on CPU: a student distilled (labels unused) from the demo's TSM-R18
(``make demo``), then fine-tuned on 10% of the labels, against the same student trained from scratch on them.

Students:

- the ViT-Tiny of ``configs/recognition/videomae_vit_t_synth.yaml``: distilled with
  ``configs/pretrain/distill_vit_t_tsm_synth.yaml``, fine-tuned with
  ``configs/recognition/videomae_vit_t_synth_ft.yaml`` (``data.train_fraction=0.1``); its from-scratch run on 10%
  of the labels is ``benchmarks/videomae_synth.py``'s (the same command, reused when that benchmark's work root has
  it);
- VideoMamba-Ti (``configs/recognition/videomamba_ti_synth.yaml``'s sizes): distilled with the same teacher and
  recipe for 16 epochs of 16 clips a step (688 steps, about an hour on two cores: a VideoMamba-Ti step costs about
  ten times a ViT-Tiny one on CPU), fine-tuned on 10% of the labels with its own recipe, against the same fine-tuning
  from scratch.

With ``--probe``, each distilled student's encoder and the same encoder at its random init are also linearly probed
(``benchmarks/linear_probe.py``'s recipe on mean-pooled patch tokens).

Each step is skipped when its output exists. Prints a markdown table and a RESULT line.

Usage:
    python benchmarks/distill_synth.py [--work-root work_dirs/distill_synth] [--videomae-root work_dirs/videomae_synth]
        [--skip-vit] [--skip-mamba] [--probe] [--distill-set KEY=VALUE ...] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from linear_probe import probe, random_init  # noqa: E402
from videomae_synth import FINETUNE, encoder_checkpoint, history, train_and_test, vidlab  # noqa: E402

DISTILL = "configs/pretrain/distill_vit_t_tsm_synth.yaml"
MAMBA = "configs/recognition/videomamba_ti_synth.yaml"
MAMBA_STUDENT = ["model.name=videomamba_ti", "model.kwargs={img_size: 64, num_frames: 8, drop_path_rate: 0.1}"]
# A VideoMamba-Ti step (24 blocks, two selective scans each) takes about 5 s for 16 clips on two cores
MAMBA_BUDGET = ["data.batch_size=16", "train.epochs=16", "optim.warmup_epochs=1", "train.val_interval=4"]


def distill(work: Path, overrides: list[str]) -> tuple[Path, dict]:
    best = work / "best.pth"
    if not best.is_file():
        work.mkdir(parents=True, exist_ok=True)
        vidlab("train", DISTILL, f"work_dir={work}", *overrides, log=work / "stdout.txt")
    runs = history(work)
    return best, {"epochs": len(runs), "minutes": sum(h["train_time_s"] for h in runs) / 60,
                  "loss": (runs[0]["loss"], runs[-1]["loss"])}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-root", default="work_dirs/distill_synth")
    ap.add_argument("--videomae-root", default="work_dirs/videomae_synth", help="its scratch_10 run is reused")
    ap.add_argument("--epochs-10pct", type=int, default=40)
    ap.add_argument("--mamba-epochs-10pct", type=int, default=10)
    ap.add_argument("--skip-vit", action="store_true")
    ap.add_argument("--skip-mamba", action="store_true")
    ap.add_argument("--probe", action="store_true", help="linear probes of the distilled and the random encoders")
    ap.add_argument("--distill-set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for distillation")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for every fine-tuning run")
    args = ap.parse_args()
    work, t0 = Path(args.work_root), time.time()
    ten = ["data.train_fraction=0.1", "train.val_interval=5", *args.set]
    vit_ten = [f"train.epochs={args.epochs_10pct}", *ten]
    rows, students = {}, {}
    if not args.skip_vit:
        student, d = distill(work / "vit_t", args.distill_set)
        students["vit_t"] = (FINETUNE, student)
        ft = train_and_test(FINETUNE, work / "vit_t_ft_10", [f"model.pretrained={student}", *vit_ten])
        rows["ViT-T, distilled from TSM"] = (d, ft)
        scratch = train_and_test(FINETUNE, Path(args.videomae_root) / "scratch_10", ["model.pretrained=null", *vit_ten])
        rows["ViT-T, from scratch"] = (None, scratch)
    if not args.skip_mamba:
        student, d = distill(work / "mamba_ti", [*MAMBA_STUDENT, *MAMBA_BUDGET, *args.distill_set])
        students["mamba_ti"] = (MAMBA, student)
        mamba_ten = [f"model.pretrained={student}", f"train.epochs={args.mamba_epochs_10pct}", *ten]
        rows["VideoMamba-Ti, distilled from TSM"] = (d, train_and_test(MAMBA, work / "mamba_ti_ft_10", mamba_ten))
        scratch_ten = ["model.pretrained=null", f"train.epochs={args.mamba_epochs_10pct}", *ten]
        rows["VideoMamba-Ti, from scratch"] = (None, train_and_test(MAMBA, work / "mamba_ti_scratch_10", scratch_ten))
    print(
        "| student, fine-tuned on 10% of the labels | distillation (epochs, min, loss) | fine-tune epochs | "
        "test top-1 | top-1 on direction pairs | mean class acc | fine-tune (min) |"
    )
    print("|---|---|---|---|---|---|---|")
    result = []
    for name, (d, m) in rows.items():
        dist = f"{d['epochs']}, {d['minutes']:.1f}, {d['loss'][0]:.3f} -> {d['loss'][1]:.3f}" if d else "-"
        paired = m.get("paired_top1", float("nan"))
        print(
            f"| {name} | {dist} | {m['epochs']} | {m['top1']:.4f} | {paired:.4f} | {m['mean_class_acc']:.4f} | "
            f"{m['train_minutes']:.1f} |"
        )
        student_name = name.split(",")[0].replace("-", "").lower().replace(" ", "_")
        result.append(f"{student_name}_{'distilled' if d else 'scratch'}_10pct={m['top1']:.4f}")
    for key, (config, student) in students.items() if args.probe else ():
        enc = encoder_checkpoint(config, student, work / f"{key}_encoder_distilled.pth", args.set)
        for init, ckpt in (("distilled", enc), ("random", random_init(enc, work / f"{key}_encoder_random.pth"))):
            m = probe(ckpt, Path("data/synth"), work / f"probe_{key}_{init}", [])
            print(f"| linear probe, {key} encoder {init} | test top-1 {m['top1']:.4f} | mean class acc "
                  f"{m['mean_class_acc']:.4f} |")  # fmt: skip
            result.append(f"probe_{key}_{init}={m['top1']:.4f}")
    print(f"total {(time.time() - t0) / 60:.1f} min")
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main()
