"""Mamba's selective scan (Gu and Dao, arXiv:2312.00752) in plain PyTorch: exact, differentiable, CPU-capable.

For each channel ``d`` and state ``n`` the recurrence over positions ``t`` is

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t,        y_t = <C_t, h_t> + D * u_t

(``delta`` optionally shifted by ``delta_bias`` and passed through softplus; the output optionally gated by
``silu(z)``), the semantics of ``mamba_ssm``'s ``selective_scan_fn``. :func:`selective_scan_ref` runs it step by
step (the definition, for tests); :func:`selective_scan` evaluates it chunk by chunk: inside a chunk of ``chunk``
positions all states come from one batched product with the decay matrix ``exp(S_t - S_s)`` (``S`` the cumulative
log-decay; every entry <= 1 for ``s <= t``, so nothing overflows however long the sequence), and only the chunks
are visited in order, carrying the state across. No CUDA kernel is needed.

Cost: ``O(length * chunk)`` exponentials per channel and state. At VideoMamba-S's size (768 channels, 16 states,
3,137 tokens) one scan takes about 4 s on 2 CPU cores with ``chunk=16`` (9.5 s with 32): exact, but not yet fast
enough for a whole network; a linear-cost form is the next step.
"""

from __future__ import annotations

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
    chunk: int = 16,
) -> torch.Tensor:
    """The selective scan, chunked (arguments as :func:`selective_scan_ref`; computed in float32, returned in
    ``u``'s dtype). ``chunk`` trades memory (``batch * channels * states * chunk**2`` floats per chunk) for the
    number of sequential steps (``length / chunk``)."""
    dtype = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    b, d, length = u.shape
    n = A.shape[1]
    log_decay = delta.unsqueeze(-1) * A[:, None, :]  # (b, d, l, n), <= 0 for A <= 0
    inputs = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # (b, d, l, n)
    h = u.new_zeros(b, d, n)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=u.device).tril()
    ys = []
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        k = stop - start
        cum = log_decay[:, :, start:stop].cumsum(dim=2)  # S_t, (b, d, k, n)
        gaps = cum.unsqueeze(3) - cum.unsqueeze(2)  # S_t - S_s, (b, d, t, s, n)
        weights = torch.exp(gaps.masked_fill(~causal[:k, :k, None], float("-inf")))
        states = torch.einsum("bdtsn,bdsn->bdtn", weights, inputs[:, :, start:stop])
        states = states + torch.exp(cum) * h.unsqueeze(2)  # carry the state in from the previous chunk
        ys.append(torch.einsum("bdtn,bnt->bdt", states, C[:, :, start:stop]))
        h = states[:, :, -1]
    return _finish(torch.cat(ys, dim=-1), u, D, z, dtype)
