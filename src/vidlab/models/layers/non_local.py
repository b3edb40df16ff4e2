"""Non-local block (Non-local Neural Networks, arXiv:1711.07971), in the variants MMAction2's TSM-NL uses and in
PySlowFast's layout (``pool_input``, ``out_bias``)."""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError

__all__ = ["NON_LOCAL_MODES", "NonLocal3d"]

#: pairwise functions: softmax of raw dot products (``gaussian``), of embedded dot products
#: (``embedded_gaussian``), or embedded dot products divided by the number of positions (``dot_product``).
NON_LOCAL_MODES = ("gaussian", "embedded_gaussian", "dot_product")


class NonLocal3d(nn.Module):
    """Residual non-local block over a ``(N, C, T, H, W)`` feature map.

    ``y = x + bn(conv_out(f(theta(x), phi(x)) @ g(x)))`` with 1x1x1 convolutions ``theta``, ``phi``, ``g``
    mapping ``C -> C // reduction``. In ``gaussian`` mode ``theta`` and ``phi`` are the identity (the block then
    has only ``g`` and ``conv_out``). With ``sub_sample``, ``g`` and ``phi`` are followed by a ``(1, 2, 2)`` max
    pool, so every position attends to a spatially halved set of keys.

    Parameter names and init follow mmcv's ``NonLocal3d`` as MMAction2 configures it: 1x1x1 convs with bias
    except ``conv_out``, which BN follows; normal std 0.01; the output BatchNorm starts at zero so the block
    starts as the identity. PySlowFast's ``Nonlocal`` (its ``softmax`` instantiation is ``embedded_gaussian`` with
    ``use_scale``) differs in two places: ``pool_input`` and ``out_bias``.

    Args:
        in_channels: C.
        mode: one of :data:`NON_LOCAL_MODES`.
        reduction: ``inter_channels = max(C // reduction, 1)``.
        sub_sample: max-pool the keys and values spatially by 2.
        use_scale: divide the ``embedded_gaussian`` logits by ``sqrt(inter_channels)``.
        pool_input: with ``sub_sample``, pool the block's input before ``phi`` and ``g`` (PySlowFast) instead of
            their outputs (mmcv); a max pool does not commute with the convs' biases and mixing, so the two differ.
        out_bias: give ``conv_out`` a bias although BN follows it (PySlowFast).
    """

    def __init__(
        self,
        in_channels: int,
        mode: str = "embedded_gaussian",
        *,
        reduction: int = 2,
        sub_sample: bool = False,
        use_scale: bool = True,
        pool_input: bool = False,
        out_bias: bool = False,
    ) -> None:
        super().__init__()
        if mode not in NON_LOCAL_MODES:
            raise InputError(f"non-local mode must be one of {NON_LOCAL_MODES}, got {mode!r}")
        self.mode = mode
        self.use_scale = use_scale
        self.sub_sample = sub_sample
        self.pool_input = pool_input
        self.inter_channels = max(in_channels // reduction, 1)
        self.g = nn.Conv3d(in_channels, self.inter_channels, 1)
        if mode != "gaussian":
            self.theta = nn.Conv3d(in_channels, self.inter_channels, 1)
            self.phi = nn.Conv3d(in_channels, self.inter_channels, 1)
        self.conv_out = nn.Conv3d(self.inter_channels, in_channels, 1, bias=out_bias)  # BN follows
        self.bn = nn.BatchNorm3d(in_channels)
        self.pool = nn.MaxPool3d((1, 2, 2)) if sub_sample else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self, std: float = 0.01) -> None:
        """Normal(0, std) 1x1x1 convs, zero biases; output BN weight and bias zero."""
        for conv in (self.g, getattr(self, "theta", None), getattr(self, "phi", None), self.conv_out):
            if conv is not None:
                nn.init.normal_(conv.weight, std=std)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, H, W)`` -> same shape."""
        n = x.shape[0]
        # keys and values: pooled after their convs (mmcv) or computed from the pooled input (PySlowFast)
        kv = (lambda conv: conv(self.pool(x))) if self.pool_input else (lambda conv: self.pool(conv(x)))
        value = kv(self.g).flatten(2).transpose(1, 2)  # (N, M, C')
        if self.mode == "gaussian":
            query = x.flatten(2).transpose(1, 2)  # (N, P, C)
            key = self.pool(x).flatten(2)  # (N, C, M)
        else:
            query = self.theta(x).flatten(2).transpose(1, 2)
            key = kv(self.phi).flatten(2)
        weight = torch.matmul(query, key)  # (N, P, M)
        if self.mode == "dot_product":
            weight = weight / weight.shape[-1]
        else:
            if self.mode == "embedded_gaussian" and self.use_scale:
                weight = weight / query.shape[-1] ** 0.5
            weight = weight.softmax(dim=-1)
        y = torch.matmul(weight, value)  # (N, P, C')
        y = y.transpose(1, 2).reshape(n, self.inter_channels, *x.shape[2:])
        return x + self.bn(self.conv_out(y))

    def forward_frames(self, x: torch.Tensor, num_segments: int) -> torch.Tensor:
        """The block on stacked frames of a 2D backbone: ``(B * T, C, H, W)`` -> same shape."""
        nt, c, h, w = x.shape
        x5 = x.view(nt // num_segments, num_segments, c, h, w).transpose(1, 2)
        return self.forward(x5).transpose(1, 2).reshape(nt, c, h, w)
