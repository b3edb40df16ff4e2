"""`vidlab extract`: per-video features of a checkpoint's backbone, resumable and sharded under torchrun.

Each video of the list gets one ``<out>/<video id>.npy`` (the video's path under the data root with ``.npy`` for its
suffix): ``(views, C)`` with ``--pool mean`` (one row per test view: clip x crop), or the ``(views, C, T', H', W')``
maps with ``--pool none``. Files are written atomically, so a killed run leaves only whole files, and a rerun skips
the videos whose file exists. ``index.csv`` (video, file, shape, labels) is written once every video is done.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidlab.data.datasets import feature_path
from vidlab.data.loader import build_loader
from vidlab.engine.builders import build_dataset
from vidlab.engine.checkpoint import atomic_write
from vidlab.engine.distributed import barrier, cleanup, init_distributed
from vidlab.engine.evaluate import to_input
from vidlab.engine.fast import prepare_on_first_call
from vidlab.engine.inference import build_and_load, inference_precision, resolve_config
from vidlab.engine.precision import autocast_context
from vidlab.errors import InputError

logger = logging.getLogger("vidlab")

DTYPES = ("fp32", "bf16", "auto")


def save_array(path: Path, array: np.ndarray) -> None:
    """``np.save`` through a temporary file and a rename: never a truncated ``.npy``."""
    atomic_write(path, lambda f: np.save(f, array))


def features_of(model: torch.nn.Module, x: torch.Tensor, layer: int | None, pool: str) -> torch.Tensor:
    """``x`` ``(N, C, T, H, W)`` -> backbone features: the final map (``layer=None``) or intermediate ``layer``,
    mean-pooled to ``(N, C)`` or kept as ``(N, C, T', H', W')``."""
    feats = model.forward_features(x) if layer is None else model.forward_intermediates(x, [layer])[0]
    return feats.mean(dim=(2, 3, 4)) if pool == "mean" else feats


class FeatureModel(torch.nn.Module):
    """A model's :func:`features_of` as a module of one clip batch, so that :func:`vidlab.engine.fast.prepare_model`
    can fold, compile or export it like a classifier."""

    def __init__(self, model: torch.nn.Module, layer: int | None, pool: str) -> None:
        super().__init__()
        self.model, self.layer, self.pool = model, layer, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return features_of(self.model, x, self.layer, self.pool)


def _rel(item) -> str:
    return item.rel_path or Path(item.path).name


@torch.no_grad()
def extract_features(
    checkpoint: str | Path,
    list_file: str | Path,
    root: str | Path,
    out: str | Path,
    *,
    layer: str | int | None = None,
    pool: str = "mean",
    clips: int | None = None,
    dtype: str = "fp32",
    config: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    batch_size: int = 4,
    num_workers: int = 2,
) -> Path:
    """Extract features of every video in ``list_file`` (paths relative to ``root``) into ``out``; returns the
    path of ``index.csv``. Videos whose features file exists already are skipped (resume after a kill)."""
    if pool not in ("mean", "none"):
        raise InputError(f"pool must be mean or none, got {pool!r}")
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    root, out = Path(root), Path(out)
    overrides = [*overrides, f"data.root={root}", f"data.test_list={Path(list_file).resolve()}"]
    cfg = resolve_config(checkpoint, config, overrides)
    if clips is not None:
        key = "test_sampler" if cfg.data.test_sampler is not None else "val_sampler"
        getattr(cfg.data, key)["num_clips"] = clips
    info = init_distributed(cfg.device)
    precision = inference_precision(cfg, info.device, dtype)
    index = int(layer) if layer is not None else None

    everything = build_dataset(cfg, "test")
    todo = [it for it in everything.items if not feature_path(out, _rel(it)).is_file()]
    barrier(info)  # every rank lists what is done before any rank writes, so all shard the same list
    if info.is_main:
        print(
            f"extract: {len(everything.items)} videos, {len(everything.items) - len(todo)} already done, "
            f"{len(todo)} to go -> {out}",
            file=sys.stderr,
        )
    if todo:
        _extract_todo(cfg, checkpoint, todo, out, info, precision, layer=index, pool=pool, batch_size=batch_size,
                      num_workers=num_workers)  # fmt: skip
    barrier(info)
    path = out / "index.csv"
    if info.is_main:
        _write_index(path, out, everything.items)
    cleanup(info)
    return path


@torch.no_grad()
def _extract_todo(cfg, checkpoint, todo: list, out: Path, info, precision: str, *, layer: int | None, pool: str,
                  batch_size: int, num_workers: int) -> None:  # fmt: skip
    """Run the model on the videos of ``todo`` (this rank's share) and write one features file per video."""
    dataset = build_dataset(cfg, "test", items=todo)
    loader = build_loader(
        dataset,
        batch_size,
        train=False,
        num_workers=num_workers,
        rank=info.rank,
        world_size=info.world_size,
        timeout=cfg.data.timeout,
    )
    # BatchNorm folded into the convolutions (checked on the first batch), compiled or exported as test.* says
    model = FeatureModel(build_and_load(cfg, checkpoint, info.device), layer, pool)
    prepare_on_first_call(model, cfg.test)
    t0, done, shown = time.time(), 0, 0.0
    for batch in loader:
        x = to_input(batch["imgs"], cfg.data.mean, cfg.data.std, info.device)  # (B, V, C, T, H, W)
        b, v = x.shape[:2]
        with autocast_context(precision, info.device):
            feats = model(x.flatten(0, 1))  # (B*V, C[, T', H', W'])
        feats = feats.float().cpu().unflatten(0, (b, v)).numpy()
        for i, j in enumerate(batch["index"].tolist()):
            save_array(feature_path(out, _rel(todo[j])), feats[i])
        done += b
        if info.is_main and time.time() - shown > 10:  # a progress line every 10 s
            shown = time.time()
            rate = done / max(shown - t0, 1e-9)
            print(f"extract: rank 0 wrote {done} videos ({rate:.2f}/s)", file=sys.stderr, flush=True)


def _write_index(path: Path, out: Path, items: list) -> None:
    """``index.csv``: each video's features file, its shape and its label(s)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["video", "file", "shape", "label"])
    for it in items:
        rel = _rel(it)
        file = feature_path(out, rel)
        shape = np.load(file, mmap_mode="r").shape
        writer.writerow(
            [rel, file.relative_to(out).as_posix(), "x".join(map(str, shape)), " ".join(map(str, it.label))]
        )
    atomic_write(path, lambda f: f.write(buf.getvalue().encode()))
    print(f"extract: features of {len(items)} videos in {out}, index {path}", file=sys.stderr)
