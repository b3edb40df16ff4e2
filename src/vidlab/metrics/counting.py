"""Repetition-counting metrics over numpy arrays, as Deep-Temporal-Repetition-Counting (Zhang et al., "Context-aware
and Scale-insensitive Temporal Repetition Counting", CVPR 2020) and SEVERE's fork of it report them on UCFRep.

- ``mae_norm``: mean over videos of ``|pred - gt| / gt`` (the reference's ``MAE``);
- ``obo``: off-by-one accuracy, the fraction of videos with ``|pred - gt| <= 1`` (the reference's ``OBOA``);
- ``mae``: plain mean absolute error ``|pred - gt|`` (not in the reference; it also counts videos with ``gt == 0``).

UCFRep has no video with fewer than two repetitions, so the reference never divides by zero. Here a video with
``gt == 0`` is left out of ``mae_norm`` (its relative error is undefined) but counts in ``obo`` and ``mae``;
``mae_norm`` is NaN when no video has ``gt > 0``.
"""

from __future__ import annotations

import numpy as np

from vidlab.errors import InputError

__all__ = ["counting_metrics", "round_counts"]


def round_counts(counts) -> np.ndarray:
    """Counts rounded half up (``2.5 -> 3``), as the reference rounds its predicted counts (Python 2's ``round``;
    numpy's and torch's round half to even)."""
    return np.floor(np.asarray(counts, dtype=np.float64) + 0.5)


def _flat(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InputError(f"{name} must be one count per video, (N,) or (N, 1), got shape {arr.shape}")
    return arr


def counting_metrics(pred, gt) -> dict[str, float]:
    """``mae_norm``, ``obo`` and ``mae`` of predicted counts against ground-truth counts (see the module docstring).

    Args:
        pred: ``(N,)`` or ``(N, 1)`` predicted counts (the counting task rounds them, as the reference does).
        gt: ``(N,)`` or ``(N, 1)`` ground-truth counts, >= 0.

    Returns:
        ``{"mae_norm", "obo", "mae"}`` as floats.
    """
    p, g = _flat(pred, "pred"), _flat(gt, "gt")
    if p.shape != g.shape:
        raise InputError(f"pred {p.shape} and gt {g.shape} differ in length")
    if len(g) == 0:
        raise InputError("no videos to evaluate")
    if (g < 0).any():
        raise InputError(f"ground-truth counts must be >= 0, got {g.min()}")
    err = np.abs(p - g)
    counted = g > 0
    mae_norm = float(np.mean(err[counted] / g[counted])) if counted.any() else float("nan")
    return {"mae_norm": mae_norm, "obo": float(np.mean(err <= 1)), "mae": float(np.mean(err))}
