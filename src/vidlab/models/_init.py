"""The from-scratch init the CNN families share (MMAction2's): convs Kaiming normal, BatchNorm identity."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn


def init_conv_bn(root: nn.Module, skip: Iterable[nn.Module] = ()) -> None:
    """Kaiming normal (fan_out, ReLU gain) for every 2D/3D conv under ``root`` with its bias (if any) zeroed,
    BatchNorm weight 1 and bias 0; modules under any of ``skip`` keep their own init."""
    skipped = {id(m) for s in skip for m in s.modules()}
    for m in root.modules():
        if id(m) in skipped:
            continue
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
