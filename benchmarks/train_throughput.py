"""Training throughput of the demo recipe, vidlab vs MMAction2 1.2.0, side by side in one process.

The recipe is ``configs/recognition/tsm_r18_synth.yaml``: TSM-R18 (8 segments, shift 1/8), 12 classes, batches of
16 clips of 8 frames at 32x32, AdamW (lr 1e-3, betas (0.9, 0.999), weight decay 1e-4, none on norms and biases),
gradient clipping at norm 20, channels-last, precision ``auto``. Both sides train from random init on the same
torch threads (2 by default).

Training step (data loading excluded): both sides get pre-decoded random uint8 batches (the same pixels and labels)
in the layout their loader yields, and run one optimizer step per batch (normalization, forward, loss, backward,
clipping, AdamW):

- vidlab: the model, optimizer and lr schedule come from the engine's builders (``build_model``,
  ``build_optimizer_from_config``, ``build_scheduler``) on the loaded recipe, channels-last as the recipe sets it;
  each step is the engine's own ``train_step`` (normalize, autocast, forward through ``TrainForward``, loss,
  backward) followed by ``optimizer_step`` (clip, AdamW, per-step lr schedule) on ``imgs (16, 1, 8, 32, 32, 3)``;
- MMAction2: ``Recognizer2D`` with ``ResNetTSM`` depth 18 and ``TSMHead`` (its TSM-R50 Kinetics config with depth
  18, 512 head channels, 12 classes, 8 segments: ``tests/assets/mmaction2_ref.py``) and an ``OptimWrapper`` from
  mmengine's ``build_optim_wrapper`` (AdamW, the same lr / betas / weight decay, ``norm_decay_mult=0``,
  ``bias_decay_mult=0``, ``clip_grad=dict(max_norm=20)``); each step is ``model.train_step(data, optim_wrapper)``
  (its data preprocessor stacks and normalizes, ``mode='loss'`` forward, ``update_params``) on 16 uint8
  ``(8, 3, 32, 32)`` inputs with ``ActionDataSample`` labels, as its loader collates them. MMAction2 has no
  channels-last option: its tensors stay contiguous. Its parameter schedulers run in runner hooks, outside
  ``train_step``, and are left out (vidlab's per-step ``LambdaLR`` is a few scalar updates).

Precisions: fp32 always; bf16 too where the CPU computes it natively (vidlab ``train.amp=bf16``). MMAction2's
``AmpOptimWrapper`` refuses to run without CUDA/NPU/MLU/MUSA (the script tries it and prints the refusal), so its bf16
row uses an ``OptimWrapper`` whose ``optim_context`` adds ``torch.autocast("cpu", dtype=torch.bfloat16)`` around
preprocessing, forward and loss, which is what ``AmpOptimWrapper(dtype="bfloat16")`` does (its gradient scaler does
nothing without CUDA); a forward hook hands the head's logits to its loss as float32, since the loss computes top-k
accuracy through numpy, which has no bf16 (so MMAction2's own bf16 path fails at that point).

Timing: each round builds both sides afresh, warms each up for ``--warmup`` steps, then alternates single steps
(vidlab, MMAction2, MMAction2, vidlab, ...) for ``--steps`` steps each, so that both see the same load on a shared
machine. Per round and side, clips/s is the batch size over the median step time; reported are the medians over
rounds of each side's clips/s and of the per-round ratio vidlab / MMAction2 (each round's ratio compares steps run
under the same load, so it varies far less than the clips/s themselves on a shared machine).

End to end (``--synth DIR``, optional, fp32): each step also takes its batch from the toolbox's own loader over
SynthActions' ``train.txt`` (2 workers each): vidlab's ``build_dataset`` / ``build_loader`` on the recipe with
``data.root=DIR`` (a new iterator each epoch, as the engine makes them); MMAction2's ``VideoDataset`` with
DecordInit, SampleFrames(1, 1, 8), DecordDecode, Resize(32x32), Flip(0.5), FormatShape(NCHW), PackActionInputs
through mmengine's ``Runner.build_dataloader`` (DefaultSampler, ``persistent_workers=True`` as its configs set it).
Loaders prefetch, so the sides cannot alternate step by step here: each round runs one side's block (fresh model
and loader, warm-up, ``--steps`` timed steps, loader shut down), then the other's, in alternating order; clips/s is
the median over rounds of each block's steps over its wall time.

Runs in the reference environment (MMAction2 1.2.0, built by ``shared/refs/setup.sh``; the same torch, numpy and
PyAV builds as vidlab's own environment), from the repository root::

    PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/mm/bin/python benchmarks/train_throughput.py \\
        [--rounds 3] [--steps 20] [--synth /tmp/synth]

``/work/shared/refs`` provides ``refshim`` (imported before mmaction), ``src`` vidlab and ``tests/assets`` the
``mmaction2_ref`` helper. Prefix ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` to run both sides as on an
AVX2-only CPU. SynthActions for ``--synth``: ``.venv/bin/vidlab data synth --out /tmp/synth --num-videos 200``.

Prints a markdown table and, last, ``RESULT train_ratio=<x> vidlab_clips_per_s=<a> mmaction2_clips_per_s=<b>``:
vidlab clips/s over MMAction2 clips/s of the fp32 training step.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)

# isort: split
import mmaction2_ref
import torch
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner import Runner

from vidlab.config import Config, load_config
from vidlab.data.loader import build_loader
from vidlab.engine.builders import build_dataset, build_model, build_optimizer_from_config, build_task
from vidlab.engine.distributed import DistInfo
from vidlab.engine.evaluate import TrainForward
from vidlab.engine.optim import build_scheduler
from vidlab.engine.precision import cpu_has_native_bf16
from vidlab.engine.train import optimizer_step, seed_everything, train_step

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "configs" / "recognition" / "tsm_r18_synth.yaml"
NUM_BATCHES = 4  # distinct random batches, cycled
DEFAULT_SHARING = torch.multiprocessing.get_sharing_strategy()


@OPTIM_WRAPPERS.register_module()
class CpuBf16OptimWrapper(OptimWrapper):
    """``AmpOptimWrapper(dtype="bfloat16")``'s autocast around the forward, on CPU (which AmpOptimWrapper refuses)."""

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast("cpu", dtype=torch.bfloat16):
            yield


def recipe(overrides: list[str]) -> Config:
    return load_config(RECIPE, overrides)


def clip_shape(cfg: Config) -> tuple[int, int, int]:
    """(frames, height, width) of one training clip of the recipe."""
    width, height = cfg.data.train_pipeline[0]["scale"]
    return cfg.data.num_segments, height, width


def random_data(cfg: Config, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """uint8 clips ``(B, T, H, W, 3)`` and labels ``(B,)``."""
    g = torch.Generator().manual_seed(seed)
    b = cfg.data.batch_size
    return [
        (
            torch.randint(0, 256, (b, *clip_shape(cfg), 3), dtype=torch.uint8, generator=g),
            torch.randint(0, cfg.model.num_classes, (b,), generator=g),
        )
        for _ in range(NUM_BATCHES)
    ]


def cycle(items: list):
    while True:
        yield from items


def vidlab_stepper(cfg: Config, batches):
    """One optimizer step of vidlab's engine per call, on the next of ``batches`` (the recipe's real set-up)."""
    seed_everything(cfg.train.seed, deterministic=False)
    model = build_model(cfg)
    if cfg.train.channels_last:
        model.to_channels_last()
    optimizer, _ = build_optimizer_from_config(model, cfg, cfg.data.batch_size)
    scheduler = build_scheduler(optimizer, cfg.optim, cfg.train.epochs, iters_per_epoch=100)
    trained = TrainForward(model)
    trained.train()
    task, info = build_task(cfg), DistInfo()
    precision = "bf16" if cfg.train.amp == "bf16" else "none"
    args = {
        "mean": cfg.data.mean,
        "std": cfg.data.std,
        "precision": precision,
        "channels_last": cfg.train.channels_last,
    }

    def step() -> float:
        loss = train_step(trained, next(batches), task, info, **args)
        optimizer_step(trained, optimizer, scheduler, cfg.optim.grad_clip)
        return loss

    return step


def vidlab_random(cfg: Config, data: list):
    return cycle([{"imgs": clips.unsqueeze(1), "label": labels} for clips, labels in data])  # (B, 1, T, H, W, 3)


def vidlab_loader(cfg: Config):
    """Batches of the recipe's own training loader, a new iterator per epoch as the engine makes them."""
    dataset = build_dataset(cfg, "train")
    loader = build_loader(dataset, cfg.data.batch_size, train=True, num_workers=cfg.data.num_workers, seed=0)
    epoch = 0
    while True:
        dataset.set_epoch(epoch)
        loader.sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def mm_stepper(cfg: Config, precision: str, batches, notes: dict):
    """One ``model.train_step(data, optim_wrapper)`` of the MMAction2 counterpart per call."""
    torch.manual_seed(cfg.train.seed)
    mmaction2_ref.register_all_modules()
    model_cfg = mmaction2_ref.model_config(
        "tsm_r18", num_classes=cfg.model.num_classes, num_segments=clip_shape(cfg)[0]
    )
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    o = cfg.optim
    optim = {"type": "AdamW", "lr": o.lr, "betas": tuple(o.betas), "weight_decay": o.weight_decay}
    wrapper = {"type": "OptimWrapper", "optimizer": optim, "clip_grad": {"max_norm": o.grad_clip, "norm_type": 2}}
    wrapper["paramwise_cfg"] = {"norm_decay_mult": 0.0, "bias_decay_mult": 0.0}
    if precision == "bf16":
        try:
            build_optim_wrapper(model, {**wrapper, "type": "AmpOptimWrapper", "dtype": "bfloat16"})
            notes["amp"] = "builds"
        except Exception as e:  # noqa: BLE001  (report whatever MMAction2's own bf16 path raises)
            notes["amp"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        wrapper["type"] = "CpuBf16OptimWrapper"
        model.cls_head.register_forward_hook(lambda module, inputs, output: output.float())
    optim_wrapper = build_optim_wrapper(model, wrapper)

    def step() -> float:
        return float(model.train_step(next(batches), optim_wrapper)["loss"].detach())

    return step


def mm_random(cfg: Config, data: list):
    """The same clips as MMAction2's loader collates them: a list of ``(T, 3, H, W)`` uint8 and data samples."""
    made = []
    for clips, labels in data:
        inputs = list(clips.permute(0, 1, 4, 2, 3).contiguous())
        made.append((inputs, [ActionDataSample().set_gt_label(int(y)) for y in labels]))
    while True:
        for inputs, samples in made:
            yield {"inputs": list(inputs), "data_samples": list(samples)}


def mm_loader(cfg: Config, root: str):
    t, h, w = clip_shape(cfg)
    pipeline = [
        {"type": "DecordInit"},
        {"type": "SampleFrames", "clip_len": 1, "frame_interval": 1, "num_clips": t},
        {"type": "DecordDecode"},
        {"type": "Resize", "scale": (w, h), "keep_ratio": False},
        {"type": "Flip", "flip_ratio": 0.5},
        {"type": "FormatShape", "input_format": "NCHW"},
        {"type": "PackActionInputs"},
    ]
    dataset = {"type": "VideoDataset", "ann_file": f"{root}/train.txt", "data_prefix": {"video": root}}
    spec = {"batch_size": cfg.data.batch_size, "num_workers": cfg.data.num_workers, "persistent_workers": True}
    spec |= {"sampler": {"type": "DefaultSampler", "shuffle": True}, "dataset": {**dataset, "pipeline": pipeline}}
    torch.multiprocessing.set_sharing_strategy(DEFAULT_SHARING)  # vidlab's loader sets its own
    loader = Runner.build_dataloader(spec, seed=cfg.train.seed)
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            if len(batch["inputs"]) == cfg.data.batch_size:  # as drop_last
                yield batch
        epoch += 1


def interleaved(steppers: dict, warmup: int, steps: int, flip: bool) -> dict[str, list[float]]:
    """Per-step wall times of each stepper, the sides alternating step by step (ABBA order)."""
    for step in steppers.values():
        for _ in range(warmup):
            step()
    names, times = list(steppers), {name: [] for name in steppers}
    for i in range(steps):
        for name in names if (i % 2 == 0) != flip else names[::-1]:
            t0 = time.perf_counter()
            steppers[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def block(make_step, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` steps after ``warmup``, of a stepper whose batches come from a loader."""
    step = make_step()
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = time.perf_counter() - t0
    del step
    gc.collect()  # ends the loader's iterator and its workers before the other side runs
    return seconds


def summary(vidlab: list[float], mm: list[float]) -> tuple[float, float, float, str]:
    """(median per-round ratio, median vidlab clips/s, median MMAction2 clips/s, the per-round ratios as text)."""
    ratios = [v / m for v, m in zip(vidlab, mm)]
    per_round = ", ".join(f"{r:.2f}" for r in ratios)
    return statistics.median(ratios), statistics.median(vidlab), statistics.median(mm), per_round


def print_row(label: str, precision: str, row: tuple) -> None:
    print(f"| {label} | {precision} | {row[1]:.1f} | {row[2]:.1f} | **{row[0]:.2f}x** | {row[3]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20, help="timed optimizer steps per side and round")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--synth", help="SynthActions folder: also measure end to end with each toolbox's loader")
    ap.add_argument("--no-bf16", action="store_true", help="fp32 only, even where bf16 is native")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    MMLogger.get_current_instance().setLevel(logging.ERROR)  # mute the per-parameter reports and deprecation notes
    precisions = ["fp32"] + (["bf16"] if cpu_has_native_bf16() and not args.no_bf16 else [])
    b = recipe([]).data.batch_size

    notes: dict = {}
    loads = [os.getloadavg()[0]]
    rates: dict[tuple[str, str], list[float]] = {}  # clips/s per round
    e2e: dict[str, list[float]] = {"vidlab": [], "mmaction2": []}
    for rnd in range(args.rounds):
        for precision in precisions:
            cfg = recipe([f"train.amp={'bf16' if precision == 'bf16' else 'none'}"])
            data = random_data(cfg, seed=rnd)
            steppers = {
                "vidlab": vidlab_stepper(cfg, vidlab_random(cfg, data)),
                "mmaction2": mm_stepper(cfg, precision, mm_random(cfg, data), notes),
            }
            times = interleaved(steppers, args.warmup, args.steps, flip=rnd % 2 == 1)
            for side, ts in times.items():
                rates.setdefault((side, precision), []).append(b / statistics.median(ts))
            loads.append(os.getloadavg()[0])
        if args.synth:
            cfg = recipe(["train.amp=none", f"data.root={args.synth}"])
            root = str(Path(args.synth).resolve())
            blocks = {
                "vidlab": lambda cfg=cfg: vidlab_stepper(cfg, vidlab_loader(cfg)),
                "mmaction2": lambda cfg=cfg, root=root: mm_stepper(cfg, "fp32", mm_loader(cfg, root), notes),
            }
            for side in list(blocks) if rnd % 2 == 0 else list(blocks)[::-1]:
                e2e[side].append(args.steps * b / block(blocks[side], args.warmup, args.steps))
            loads.append(os.getloadavg()[0])

    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "all")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()} kernels, oneDNN ISA {isa}), {args.threads} threads, "
        f"{args.rounds} rounds x {args.steps} timed steps per side (after {args.warmup} warm-up), batch {b}"
    )
    print(f"1-minute load average at round ends: {', '.join(f'{x:.2f}' for x in loads)}")
    if "amp" in notes:
        print(f"MMAction2 AmpOptimWrapper(dtype='bfloat16') on CPU: {notes['amp']}")
    print("| measurement | precision | vidlab clips/s | MMAction2 clips/s | vidlab / MMAction2 | per round |")
    print("|---|---|---|---|---|---|")
    result = {}
    for precision in precisions:
        row = summary(rates[("vidlab", precision)], rates[("mmaction2", precision)])
        result.setdefault("step", row[:3])
        print_row("training step", precision, row)
    if args.synth:
        row = summary(e2e["vidlab"], e2e["mmaction2"])
        print_row("end to end, own loader (2 workers)", "fp32", row)
    ratio, v, m = result["step"]
    print(f"RESULT train_ratio={ratio:.3f} vidlab_clips_per_s={v:.2f} mmaction2_clips_per_s={m:.2f}")


if __name__ == "__main__":
    main()
