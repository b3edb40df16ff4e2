"""Build PyTorchVideo 0.1.5 hub models for vidlab parity checks (reference side only; not imported by vidlab).

Used by ``make_pytorchvideo_fixtures.py`` (small parity fixtures) and ``benchmarks/parity.py`` (full size). Runs
in the reference environment; ``refshim`` must be imported first.

Two reference-side adjustments, both neutral at the hub models' own clip sizes:

- ``logits_head``: the output softmax of the R(2+1)D and X3D heads is removed (vidlab models return logits);
- ``adaptive_pool``: for inputs smaller than the hub configuration, the head's fixed-size average pool (e.g.
  ``(8, 7, 7)``) becomes a global average pool, which is what it computes at the configured size.
"""

from __future__ import annotations

import torch
from pytorchvideo.models import hub
from pytorchvideo.models.head import ResNetBasicHead
from pytorchvideo.models.x3d import ProjectedPool

#: hub models with a parity fixture / full-size parity run (all of vidlab's PyTorchVideo mappings).
HUB = ("c2d_r50", "i3d_r50", "slow_r50", "slowfast_r50", "slowfast_r101", "csn_r101", "r2plus1d_r50")
HUB += ("x3d_xs", "x3d_s", "x3d_m", "x3d_l", "mvit_base_16x4", "mvit_base_32x3")


def build(name: str, *, num_classes: int = 400, adaptive_pool: bool = False) -> torch.nn.Module:
    """Hub model ``name``, random init, eval mode, logits out."""
    if name.startswith("mvit"):  # create_multiscale_vision_transformers: logits from head.proj, no activation
        return getattr(hub, name)(pretrained=False, head_num_classes=num_classes).eval()
    model = getattr(hub, name)(pretrained=False, model_num_class=num_classes)
    head = model.blocks[-1]
    if getattr(head, "activation", None) is not None:
        head.activation = None
    if adaptive_pool:
        for m in model.modules():
            if isinstance(m, ResNetBasicHead) and isinstance(m.pool, torch.nn.AvgPool3d):
                m.pool = torch.nn.AdaptiveAvgPool3d(1)
            if isinstance(m, ProjectedPool):
                m.pool = torch.nn.AdaptiveAvgPool3d(1)
            if type(m).__name__ == "PoolConcatPathway":  # SlowFast: one pool per pathway
                m.pool = torch.nn.ModuleList(torch.nn.AdaptiveAvgPool3d(1) for _ in m.pool)
    return model.eval()


def forward(model: torch.nn.Module, name: str, x: torch.Tensor, alpha: int = 4) -> torch.Tensor:
    """Logits for a ``(B, C, T, H, W)`` clip; SlowFast gets ``[x[:, :, ::alpha], x]`` (slow, fast)."""
    with torch.no_grad():
        if name.startswith("slowfast"):
            return model([x[:, :, ::alpha].contiguous(), x])
        return model(x)
