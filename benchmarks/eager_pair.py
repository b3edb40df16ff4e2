"""Plain fp32 eager, MMAction2 against vidlab, in one process: the same weights (``inference_speed.build_pair``),
the same clip, the same allocator (glibc's default for both), alternating order, and optionally a
``torch.profiler`` operator table of each, to see whether the two run the same kernels.

Runs in the MMAction2 reference environment, from the repository root::

    NO_TV_STUB=1 PYTHONPATH=/work/shared/refs:src:tests/assets /tmp/refs/mm/bin/python benchmarks/eager_pair.py \\
        x3d_s slowfast_r50_8x8 [--rounds 11] [--threads 2] [--profile]

Prints one ``RESULT`` line per model: the medians in ms and vidlab's speed-up over MMAction2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inference_speed  # noqa: E402  (imports MMAction2 with the shims it needs)
import torch  # noqa: E402
from mmaction2_ref import MODELS_2D, forward  # noqa: E402


def profile_table(fn, x: torch.Tensor, calls: int = 5) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn(x)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40)


@torch.no_grad()
def compare(name: str, rounds: int, show_profile: bool) -> dict[str, float]:
    ref, model, x = inference_speed.build_pair(name)
    runs = {"mmaction2": lambda clip: forward(ref, clip, name in MODELS_2D), "vidlab": model}
    for fn in runs.values():
        fn(x)  # warm-up
    times = inference_speed.round_robin(runs, x, rounds)
    if show_profile:
        for k, fn in runs.items():
            print(f"== {name}: {k}\n{profile_table(fn, x)}")
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for name in args.models:
        m = compare(name, args.rounds, args.profile)
        print(f"RESULT {name} mmaction2_ms={m['mmaction2']:.1f} vidlab_ms={m['vidlab']:.1f} "
              f"speedup={m['mmaction2'] / m['vidlab']:.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
