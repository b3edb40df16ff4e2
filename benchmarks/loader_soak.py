"""Long-run bounds of the data loader: resident memory and open file handles over many epochs with workers.

Reads a recipe's training set epoch after epoch through vidlab's loader (the same ``build_dataset`` / ``build_loader``
as ``vidlab train``, without the model) for ``--minutes`` or ``--epochs``, and samples every ``--every`` seconds:

* RSS of the main process and the sum over its data-loader workers (MiB, from ``/proc``), and
* open file descriptors of the main process and of the workers.

Workers are restarted each epoch (``persistent_workers`` is off, as in ``vidlab train``), so a leak shows as growth of
the main process between samples. The table and, last, ``RESULT rss_growth_mib=<x> fds_growth=<n> videos=<n>``: the
main process's RSS and descriptor count at the end minus after the first epoch.

Usage:
    vidlab data synth --out data/synth
    python benchmarks/loader_soak.py configs/recognition/tsn_r18_synth.yaml [--minutes 120] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path


def _rss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in text.splitlines() if line.startswith("VmRSS:")), 0.0)


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return 0


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except FileNotFoundError:
            pass
    return kids


def sample() -> dict:
    me, workers = os.getpid(), _children(os.getpid())
    return {
        "main_rss_mib": _rss_mib(me),
        "workers_rss_mib": sum(_rss_mib(w) for w in workers),
        "main_fds": _fds(me),
        "workers_fds": sum(_fds(w) for w in workers),
        "workers": len(workers),
    }


def soak(config: str, overrides: list[str], minutes: float, epochs: int | None, workers: int, every: float) -> list:
    """Rows ``(elapsed s, epoch, videos read, sample())``: every ``every`` seconds while workers run, and at the end
    of every epoch (after a garbage collection, workers gone); the first row is the end of the first epoch."""
    import gc

    from vidlab.config import load_config
    from vidlab.data.loader import build_loader
    from vidlab.engine.builders import build_dataset

    cfg = load_config(config, [*overrides, f"data.num_workers={workers}"])
    dataset = build_dataset(cfg, "train")
    loader = build_loader(dataset, cfg.data.batch_size, train=True, num_workers=workers, timeout=cfg.data.timeout)
    rows, videos, t0, last, epoch = [], 0, time.time(), -1.0, 0
    while True:
        loader.sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for batch in loader:
            videos += len(batch["imgs"])
            now = time.time() - t0
            if epoch > 0 and now - last >= every:
                rows.append((now, epoch, videos, sample()))
                last = now
        epoch += 1
        gc.collect()  # the finished epoch's iterator, and with it the workers' pipes
        rows.append((time.time() - t0, epoch, videos, {**sample(), "epoch_end": True}))
        if (epochs is not None and epoch >= epochs) or (epochs is None and time.time() - t0 >= minutes * 60):
            break
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config")
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--epochs", type=int, default=None, help="stop after this many epochs instead of --minutes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    args = ap.parse_args()
    rows = soak(args.config, args.overrides, args.minutes, args.epochs, args.workers, args.every)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; {args.config}")
    print("| minutes | epoch | videos read | main RSS MiB | workers RSS MiB | main fds | workers fds |")
    print("|---|---|---|---|---|---|---|")
    ends = [r for r in rows if r[3].get("epoch_end")]
    shown = [ends[0], *[r for r in rows if not r[3].get("epoch_end")], ends[-1]]  # of the epoch ends, the first / last
    for t, epoch, videos, s in shown:
        print(f"| {t / 60:.1f} | {epoch} | {videos} | {s['main_rss_mib']:.0f} | {s['workers_rss_mib']:.0f} | "
              f"{s['main_fds']} | {s['workers_fds']} |")  # fmt: skip
    first, end = ends[0][3], ends[-1][3]
    growth = end["main_rss_mib"] - first["main_rss_mib"]
    print(f"RESULT rss_growth_mib={growth:.1f} fds_growth={end['main_fds'] - first['main_fds']} videos={rows[-1][2]}")


if __name__ == "__main__":
    main()
