"""Mamba's selective scan (Gu and Dao, arXiv:2312.00752) in plain PyTorch: exact, differentiable, CPU-capable.

For each channel ``d`` and state ``n`` the recurrence over positions ``t`` is

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,        y_t = <C_t, h_t> + D * u_t

(``delta`` optionally shifted by ``delta_bias`` and passed through softplus; the output optionally gated by
``silu(z)``), the semantics of ``mamba_ssm``'s ``selective_scan_fn``. :func:`selective_scan_ref` runs it one position
at a time (the definition, for tests); :func:`selective_scan` evaluates it as a two-level (chunked) scan with about
``2 * sqrt(length)`` sequential steps, exact to float32 rounding. No CUDA kernel is needed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["selective_scan", "selective_scan_ref"]


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be (batch, channels, length), got {tuple(u.shape)}, {tuple(delta.shape)}"
        )
    if A.dim() != 2 or A.shape[0] != u.shape[1]:
        raise ValueError(f"A must be (channels, states) = ({u.shape[1]}, N), got {tuple(A.shape)}")
    expected = (u.shape[0], A.shape[1], u.shape[2])
    if tuple(B.shape) != expected or tuple(C.shape) != expected:
        raise ValueError(
            f"B and C must be (batch, states, length) = {expected}, got {tuple(B.shape)}, {tuple(C.shape)}"
        )
    u, delta, A, B, C = (t.float() for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    return u, delta, A, B, C


def _finish(y, u, D, z, dtype):
    if D is not None:
        y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def selective_scan_ref(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """The recurrence one position at a time (slow; the reference the fast path is tested against).

    Shapes: ``u, delta, z`` ``(batch, channels, length)``; ``A`` ``(channels, states)``; ``B, C``
    ``(batch, states, length)``; ``D, delta_bias`` ``(channels,)``. Returns ``y`` like ``u``.
    """
    dtype = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        dt = delta[:, :, t, None]  # (b, d, 1)
        h = torch.exp(dt * A) * h + dt * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1))
    return _finish(torch.stack(ys, dim=-1), u, D, z, dtype)


def _scan_block(dt, du, A, B, C, chunk: int, chunks: int) -> torch.Tensor:
    """One block of channels. ``dt, du``: ``(b, M, K, d)``; ``A``: ``(d, n)``; ``B, C``: ``(b, M, K, n)``; returns
    ``y`` ``(b, M, K, d)`` for ``M`` chunks of ``K`` positions."""
    log_decay = dt.unsqueeze(-1) * A  # (b, M, K, d, n), <= 0
    decay = log_decay.exp()
    inputs = du.unsqueeze(-1) * B.unsqueeze(-2)
    # 1. inside every chunk at once, from a zero state: K steps over (b, M, d, n) slices
    h = inputs[:, :, 0]
    local = [h]
    for j in range(1, chunk):
        h = torch.addcmul(inputs[:, :, j], decay[:, :, j], h)
        local.append(h)
    local = torch.stack(local, dim=2)  # (b, M, K, d, n)
    through = log_decay.cumsum(dim=2).exp()  # decay from the chunk's start through each position, <= 1
    # 2. the state entering each chunk: M steps over (b, d, n)
    carry = [local.new_zeros(local.shape[0], *local.shape[3:])]
    for m in range(chunks - 1):
        carry.append(torch.addcmul(local[:, m, -1], through[:, m, -1], carry[-1]))
    # 3. every position adds its chunk's entering state, decayed
    states = torch.addcmul(local, through, torch.stack(carry, dim=1).unsqueeze(2))
    return torch.einsum("bmkdn,bmkn->bmkd", states, C)


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    chunk: int | None = None,
    block_bytes: int = 4 << 20,
) -> torch.Tensor:
    """The selective scan as a two-level scan (arguments as :func:`selective_scan_ref`; computed in float32,
    returned in ``u``'s dtype).

    The sequence is cut into chunks of ``chunk`` positions (default ``ceil(sqrt(length))``). Every chunk is first
    scanned from a zero state, all chunks together (``chunk`` sequential steps); then the states entering the
    chunks are carried across (one step per chunk); then each position adds its entering state times the decay
    since its chunk began. Decays are products of factors <= 1 and never divided by, so the result is exact to
    float32 rounding at any length, with about ``2 * sqrt(length)`` Python steps instead of ``length``. Channels
    are processed in blocks of about ``block_bytes`` per ``(positions, states)`` tensor, to stay in cache.
    """
    dtype = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    b, d, length = u.shape
    n = A.shape[1]
    k = chunk or max(1, math.isqrt(length - 1) + 1)
    m = -(-length // k)
    pad = m * k - length  # padded positions: delta 0 (decay 1, no input), never read back

    def grid(t: torch.Tensor) -> torch.Tensor:  # (b, c, length) -> (b, M, K, c)
        return F.pad(t, (0, pad)).transpose(1, 2).reshape(b, m, k, t.shape[1])

    dt, du, bt, ct = grid(delta), grid(delta * u), grid(B), grid(C)
    step = max(1, block_bytes // (4 * b * m * k * n))
    ys = [
        _scan_block(dt[..., s : s + step], du[..., s : s + step], A[s : s + step], bt, ct, k, m)
        for s in range(0, d, step)
    ]
    y = torch.cat(ys, dim=-1).reshape(b, m * k, d)[:, :length].transpose(1, 2)
    return _finish(y, u, D, z, dtype)
