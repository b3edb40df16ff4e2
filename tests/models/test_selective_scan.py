"""The chunked selective scan equals the step-by-step recurrence (forward and gradients, both scan directions)."""

import pytest
import torch

from vidlab.models.layers.selective_scan import selective_scan, selective_scan_ref


def _inputs(b=2, d=6, n=4, length=37, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, d, length, generator=g)
    delta = torch.randn(b, d, length, generator=g)
    A = -torch.exp(torch.randn(d, n, generator=g))  # Mamba's A = -exp(A_log)
    B = torch.randn(b, n, length, generator=g)
    C = torch.randn(b, n, length, generator=g)
    D = torch.randn(d, generator=g)
    z = torch.randn(b, d, length, generator=g)
    delta_bias = torch.randn(d, generator=g)
    return u, delta, A, B, C, D, z, delta_bias


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])
@pytest.mark.parametrize("reverse", [False, True])
def test_chunked_scan_equals_the_recurrence(chunk, reverse):
    u, delta, A, B, C, D, z, bias = _inputs()
    if reverse:  # the backward direction of a bidirectional block scans the flipped sequence
        u, delta, B, C, z = (t.flip(-1) for t in (u, delta, B, C, z))
    kwargs = dict(D=D, z=z, delta_bias=bias, delta_softplus=True)
    ref = selective_scan_ref(u, delta, A, B, C, **kwargs)
    out = selective_scan(u, delta, A, B, C, chunk=chunk, **kwargs)
    assert out.shape == u.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("chunk", "block_bytes"), [(None, 2 << 20), (4, 1), (64, 1000)])
def test_gradients_match_and_long_sequences_stay_finite(chunk, block_bytes):
    """The hand-written backward (states recomputed per channel block, gradient scanned backwards in time) equals
    autograd through the step-by-step recurrence, whatever the chunk and channel-block sizes."""
    u, delta, A, B, C, D, z, bias = _inputs(length=50)
    leaves = [t.clone().requires_grad_() for t in (u, delta, A, B, C, D, z, bias)]
    grads = []
    for fn, kw in ((selective_scan_ref, {}), (selective_scan, dict(chunk=chunk, block_bytes=block_bytes))):
        p = [t.detach().clone().requires_grad_() for t in leaves]
        fn(*p[:5], D=p[5], z=p[6], delta_bias=p[7], delta_softplus=True, **kw).square().sum().backward()
        grads.append([t.grad for t in p])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # strong decay over a long sequence: exp of the cumulative log-decay would underflow/overflow if not chunked
    u, delta, A, B, C, *_ = _inputs(b=1, d=2, n=3, length=2000)
    out = selective_scan(u, delta.abs() * 20, A * 10, B, C)
    assert torch.isfinite(out).all()


def test_shapes_are_checked():
    u, delta, A, B, C, *_ = _inputs()
    with pytest.raises(ValueError, match="B and C must be"):
        selective_scan(u, delta, A, B.transpose(1, 2), C)
