"""Training-curve and confusion-matrix figures (PNG, matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Loss and validation accuracy per epoch."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    ax[0].plot(epochs, [h["loss"] for h in history], marker="o")
    ax[0].set(xlabel="epoch", ylabel="train loss", title="loss")
    keys = sorted({k for h in history for k in h if k.startswith("val_")})
    regression = any(k in keys for k in ("val_mse", "val_mae"))
    for key in keys:
        pts = [(h["epoch"], h[key]) for h in history if key in h]
        if pts:
            ax[1].plot(*zip(*pts), marker="o", label=key[4:])
    if regression:
        ax[1].set(xlabel="epoch", ylabel="error / r", title="validation")
    else:
        ax[1].set(xlabel="epoch", ylabel="accuracy", title="validation", ylim=(0, 1.02))
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_confusion(scores: np.ndarray, labels: np.ndarray, path: str | Path, class_names=None) -> Path:
    """Row-normalized confusion matrix of argmax predictions."""
    from vidlab.metrics import confusion_matrix

    plt = _pyplot()
    n = scores.shape[1]
    cm = confusion_matrix(scores.argmax(1), labels, num_classes=n).astype(np.float64)
    cm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    names = class_names if class_names and len(class_names) == n else [str(i) for i in range(n)]
    size = max(4.0, 0.35 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    if n <= 40:
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true", title="confusion (row-normalized)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
