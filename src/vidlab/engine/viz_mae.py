"""``vidlab viz-mae``: what a VideoMAE pre-training checkpoint sees and reconstructs, as one PNG grid.

Rows: the clip's frames, the frames with the masked tubes greyed out, and the reconstruction (visible tubes from the
input, masked ones predicted). With normalized-pixel targets the predicted tubes are brought back to pixels with the
mean and standard deviation of the true tube (as the original visualisation script does: the loss never asked the
model for them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vidlab.data.datasets import VideoItem
from vidlab.engine.builders import build_dataset
from vidlab.engine.evaluate import to_input
from vidlab.engine.inference import build_and_load, resolve_config
from vidlab.errors import InputError
from vidlab.models.videomae_pretrain import VideoMAEPretrain, patchify, unpatchify


@torch.no_grad()
def reconstruct(model: VideoMAEPretrain, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(masked, reconstruction)`` of one normalized clip ``x`` ``(1, C, T, H, W)``, both in [0, 1] pixels."""
    shape = (1, -1, 1, 1, 1)
    frames = (x.float() * model.pixel_std.view(shape) + model.pixel_mean.view(shape)).clamp(0, 1)
    tubes = patchify(frames, model.tubelet, model.patch_size)  # (1, N, P, C)
    pred = model(x, mask)["pred"].float().view(1, -1, tubes.shape[2], tubes.shape[3])
    if model.norm_pix_loss:
        true = tubes[mask].view(1, -1, *tubes.shape[2:])
        pred = pred * (true.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6) + true.mean(dim=-2, keepdim=True)
    grid = model.token_grid(x)
    recon, masked = tubes.clone(), tubes.clone()
    recon[mask] = pred.view(-1, *tubes.shape[2:])
    masked[mask] = 0.5
    back = [unpatchify(t.flatten(2), grid, model.tubelet, model.patch_size).clamp(0, 1) for t in (masked, recon)]
    return back[0], back[1]


def viz_mae(
    checkpoint: str | Path, video: str | Path, out: str | Path, *, seed: int = 0, mask_ratio: float | None = None
) -> Path:
    """Write ``out`` (PNG): original / masked / reconstructed frames of ``video``'s first test clip.

    Raises:
        ValueError: if the checkpoint is not a VideoMAE pre-training model.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = resolve_config(checkpoint)
    model = build_and_load(cfg, checkpoint, torch.device("cpu"))
    if not isinstance(model, VideoMAEPretrain):
        raise InputError(f"{checkpoint}: viz-mae needs a videomae_pretrain_* checkpoint, not {cfg.model.name}")
    if mask_ratio is not None:
        model.mask_ratio = mask_ratio
    item = build_dataset(cfg, "test", items=[VideoItem(str(video), [0])])[0]
    x = to_input(item["imgs"][None], cfg.data.mean, cfg.data.std, torch.device("cpu"))[:, 0]  # first view
    mask = model.draw_mask(x, torch.Generator().manual_seed(seed))
    masked, recon = reconstruct(model, x, mask)
    with torch.no_grad():
        loss = float(model(x, mask)["loss"])
    shape = (1, -1, 1, 1, 1)
    original = (x * model.pixel_std.view(shape) + model.pixel_mean.view(shape)).clamp(0, 1)
    rows = [("original", original), (f"masked ({model.mask_ratio:.0%})", masked), ("reconstruction", recon)]
    t = x.shape[2]
    fig, axes = plt.subplots(3, t, figsize=(1.6 * t, 5.2), squeeze=False)
    for r, (title, clip) in enumerate(rows):
        frames = clip[0].permute(1, 2, 3, 0).numpy()  # (T, H, W, C)
        for c in range(t):
            ax = axes[r][c]
            ax.imshow(np.clip(frames[c], 0, 1))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title, fontsize=8)
    fig.suptitle(f"{Path(video).name}: loss {loss:.3f}", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
