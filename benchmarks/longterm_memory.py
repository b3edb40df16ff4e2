"""Peak memory and time per video of VideoMamba on long clips (32 and 64 frames at 224 px), on CPU.

Each measurement runs in a fresh process (peak RSS is per process): it builds the model, reads the resident set
size, then runs the clip and reads the peak (``ru_maxrss``); the table reports the peak minus the size after the
build (activations and workspace) and the median time of ``--repeats`` runs after one warm-up.

* ``infer``: one 1 x 3 x T x 224 x 224 clip through the model, ``torch.no_grad()``, fp32.
* ``train``: one forward and backward of that clip (batch 1), without and with activation checkpointing
  (``use_checkpoint``, as ``train.activation_checkpointing`` applies it): the memory it saves and the time it costs.

Usage:
    python benchmarks/longterm_memory.py [--models videomamba_ti videomamba_s] [--frames 32 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys


def measure(model: str, frames: int, mode: str, checkpoint: bool, repeats: int, warmup: int = 1) -> dict:
    import resource
    import statistics
    import time

    import torch

    from vidlab.models import create_model

    torch.manual_seed(0)
    net = create_model(model, num_classes=400, num_frames=frames, use_checkpoint=checkpoint)
    x = torch.randn(1, 3, frames, 224, 224)
    base = _rss_kib()

    def run() -> None:
        if mode == "infer":
            net.eval()
            with torch.no_grad():
                net(x)
        else:
            net.train()
            net.zero_grad(set_to_none=True)
            net(x).logsumexp(-1).sum().backward()

    for _ in range(warmup):
        run()
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "s_per_video": statistics.median(times),
        "cpu_s_per_video": statistics.median(cpu),
        "peak_mib": (peak - base) / 1024,
        "threads": torch.get_num_threads(),
    }


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["videomamba_ti", "videomamba_s"])
    ap.add_argument("--frames", nargs="+", type=int, default=[32, 64])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="passes before the timed ones")
    ap.add_argument("--train-model", default="videomamba_ti", help="model of the activation-checkpointing rows")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a single measurement, in this process
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return
    runs = [(m, f, "infer", False) for m in args.models for f in args.frames]
    runs += [(args.train_model, args.frames[0], "train", ck) for ck in (False, True)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print("| model | frames | pass | activation checkpointing | s / video | CPU s / video | peak MiB above the model |")
    print("|---|---|---|---|---|---|---|")
    for model, frames, mode, ck in runs:
        spec = dict(model=model, frames=frames, mode=mode, checkpoint=ck, repeats=args.repeats, warmup=args.warmup)
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(out.stderr)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        cells = f"{r['s_per_video']:.2f} | {r['cpu_s_per_video']:.2f} | {r['peak_mib']:.0f}"
        print(f"| {model} | {frames} | {mode} | {'yes' if ck else 'no'} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
