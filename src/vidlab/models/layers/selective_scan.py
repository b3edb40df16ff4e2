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

from vidlab.errors import InputError

__all__ = ["selective_scan", "selective_scan_ref"]


def _prepare(u, delta, A, B, C, delta_bias, delta_softplus):
    if u.dim() != 3 or delta.shape != u.shape:
        raise InputError(
            f"u and delta must both be (batch, channels, length), got {tuple(u.shape)}, {tuple(delta.shape)}"
        )
    if A.dim() != 2 or A.shape[0] != u.shape[1]:
        raise InputError(f"A must be (channels, states) = ({u.shape[1]}, N), got {tuple(A.shape)}")
    expected = (u.shape[0], A.shape[1], u.shape[2])
    if tuple(B.shape) != expected or tuple(C.shape) != expected:
        raise InputError(
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


def _grid(t: torch.Tensor, chunk: int, chunks: int, front: bool = False) -> torch.Tensor:
    """``(b, L, c)`` -> ``(chunk, b, chunks, c)``, contiguous: position ``i * chunk + j`` of the zero-padded sequence
    (padding at the end, or at the ``front``) at ``[j, :, i]``, so that one step of a scan is one contiguous slice."""
    pad = chunk * chunks - t.shape[1]
    t = F.pad(t, (0, 0, pad, 0) if front else (0, 0, 0, pad))
    return t.view(t.shape[0], chunks, chunk, -1).permute(2, 0, 1, 3).contiguous()


def _ungrid(t: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of :func:`_grid` (end padding): ``(chunk, b, chunks, c)`` -> ``(b, length, c)``."""
    k, b, m, c = t.shape
    return t.permute(1, 2, 0, 3).reshape(b, m * k, c)[:, :length]


def _scan_grid(decay: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``h = decay * h_prev + x`` over the sequence laid out by :func:`_grid` (``(chunk, b, chunks, d, n)``,
    ``0 <= decay <= 1``), in place in ``x`` (returned). Every chunk is scanned from a zero state, all chunks at once
    (``chunk`` steps), while the running product of its decays is kept; the states entering the chunks are then
    carried across (``chunks`` steps over chunk ends only), and every position adds its chunk's entering state
    times that product. Decays are multiplied, never divided by."""
    k, m = x.shape[0], x.shape[2]
    through = torch.empty_like(decay) if m > 1 else None  # decay from the chunk's start through each position
    if through is not None:
        through[0] = decay[0]
    for j in range(1, k):
        x[j].addcmul_(decay[j], x[j - 1])
        if through is not None:
            torch.mul(through[j - 1], decay[j], out=through[j])
    if through is not None:
        ends, end_decay = x[k - 1], through[k - 1]  # (b, chunks, d, n)
        carry = torch.empty_like(ends)
        carry[:, 0] = 0
        for i in range(1, m):
            torch.addcmul(ends[:, i - 1], end_decay[:, i - 1], carry[:, i - 1], out=carry[:, i])
        x.addcmul_(through, carry.unsqueeze(0))
    return x


class _Scan(torch.autograd.Function):
    """The core recurrence ``y_t = <C_t, h_t>``, ``h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`` with a
    hand-written backward: only the inputs are kept, the states are recomputed per block of channels and the
    gradient runs the same scan backwards in time (``g_t = C_t dy_t + exp(delta_{t+1} A) g_{t+1}``). Memory is
    ``O(batch x length x channels)``, not ``x states`` as autograd through the steps would keep."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, chunk: int, step: int):  # u, delta (b, L, d); A (d, n); B, C (b, L, n)
        ctx.save_for_backward(u, delta, A, B, C)
        ctx.chunk, ctx.step = chunk, step
        with torch.autocast(u.device.type, enabled=False):  # float32 throughout, under autocast too
            return _Scan._forward(u, delta, A, B, C, chunk, step)

    @staticmethod
    def _forward(u, delta, A, B, C, chunk: int, step: int) -> torch.Tensor:
        length = u.shape[1]
        m = -(-length // chunk)
        bg, cg = _grid(B, chunk, m), _grid(C, chunk, m)  # (K, b, M, n)
        ys = []
        for s in range(0, u.shape[2], step):
            dt = _grid(delta[..., s : s + step], chunk, m)  # (K, b, M, d)
            du = dt * _grid(u[..., s : s + step], chunk, m)
            h = _scan_grid((dt.unsqueeze(-1) * A[s : s + step]).exp_(), du.unsqueeze(-1) * bg.unsqueeze(-2))
            ys.append((h * cg.unsqueeze(-2)).sum(-1))  # cheaper than tiny batched matmuls on CPU
        return _ungrid(torch.cat(ys, dim=-1), length)

    @staticmethod
    def backward(ctx, dy):
        with torch.autocast(dy.device.type, enabled=False):
            return (*_Scan._backward(*ctx.saved_tensors, dy.float(), ctx.chunk, ctx.step), None, None)

    @staticmethod
    def _backward(u, delta, A, B, C, dy, chunk: int, step: int) -> tuple[torch.Tensor, ...]:
        length = u.shape[1]
        m = -(-length // chunk)
        bg, cg = _grid(B, chunk, m), _grid(C, chunk, m)
        c_rev = _grid(C.flip(1), chunk, m, front=True)  # the backward-in-time scan, padded at its front
        parts = {"du": [], "d_delta": [], "dA": []}
        db, dc = torch.zeros_like(bg), torch.zeros_like(cg)
        for s in range(0, u.shape[2], step):
            a = A[s : s + step]
            dt_seq, gy_seq = delta[..., s : s + step], dy[..., s : s + step]
            dt, ug = _grid(dt_seq, chunk, m), _grid(u[..., s : s + step], chunk, m)
            gy = _grid(gy_seq, chunk, m)
            du = dt * ug
            x = du.unsqueeze(-1) * bg.unsqueeze(-2)
            h = _scan_grid((dt.unsqueeze(-1) * a).exp_(), x.clone())
            # g_t = dL/dh_t, scanned backwards in time with the next position's decay (1 past the end)
            dt_next = F.pad(dt_seq.flip(1)[:, : length - 1], (0, 0, 1, 0))
            dt_rev = _grid(dt_next, chunk, m, front=True)
            gy_rev = _grid(gy_seq.flip(1), chunk, m, front=True)
            g = _scan_grid((dt_rev.unsqueeze(-1) * a).exp_(), gy_rev.unsqueeze(-1) * c_rev.unsqueeze(-2))
            g = g.flip(0).flip(2)  # back to forward order: the front padding lands on the end padding
            d_log = g * (h - x)  # dL/d(delta A): the decay multiplied h_{t-1} = h_t - x_t
            g_b = (g * bg.unsqueeze(-2)).sum(-1)
            parts["d_delta"].append((d_log * a).sum(-1) + ug * g_b)
            parts["du"].append(dt * g_b)
            parts["dA"].append((d_log * dt.unsqueeze(-1)).sum((0, 1, 2)))
            db += torch.matmul(du.unsqueeze(-2), g).squeeze(-2)
            dc += torch.matmul(gy.unsqueeze(-2), h).squeeze(-2)
        du = _ungrid(torch.cat(parts["du"], dim=-1), length)
        d_delta = _ungrid(torch.cat(parts["d_delta"], dim=-1), length)
        return du, d_delta, torch.cat(parts["dA"]), _ungrid(db, length), _ungrid(dc, length)


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
    """The selective scan as a two-level (chunked) scan (arguments as :func:`selective_scan_ref`; computed in
    float32, returned in ``u``'s dtype).

    The sequence is cut into chunks of ``chunk`` positions (default ``ceil(sqrt(length))``). Every chunk is first
    scanned from a zero state, all chunks together (``chunk`` sequential steps); then each chunk adds the final
    state of the one before it times its own cumulative decay (one step per chunk). Decays are products of factors
    <= 1 and never divided by, so the result is exact to float32 rounding at any length, with about
    ``2 * sqrt(length)`` sequential steps instead of ``length``. Channels are processed in blocks of about
    ``block_bytes`` per ``(positions, states)`` tensor, to stay in cache. The backward pass recomputes the states
    block by block and scans the gradient backwards in time the same way (no per-state activations are kept).
    """
    dtype = u.dtype
    u, delta, A, B, C = _prepare(u, delta, A, B, C, delta_bias, delta_softplus)
    b, d, length = u.shape
    n = A.shape[1]
    k = chunk or max(1, math.isqrt(length - 1) + 1)
    step = max(1, block_bytes // (4 * b * -(-length // k) * k * n))
    y = _Scan.apply(u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), k, step)
    return _finish(y.transpose(1, 2), u, D, z, dtype)
