"""Deterministic weights for parity fixtures: values are a function of (state-dict key, shape) alone.

Shared by the fixture scripts (run in a reference toolbox's environment, where vidlab is not installed)
and the tests that rebuild the same weights, so fixtures store key names and shapes instead of tensors.
Needs only torch.
"""

import math
import zlib

import torch


def fill(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Float32 values for one state-dict entry, chosen so activations neither vanish nor blow up."""
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    x = torch.randn(shape, generator=gen, dtype=torch.float32)
    name = key.rsplit(".", 1)[-1]
    if "non_local_block." in key and name == "weight":
        # A non-local block's output grows with the square of its input (the dot-product mode has no softmax to
        # bound it); damped query/key projections and output scale keep a deep stack of them finite.
        return x * (0.2 if len(shape) == 1 else 0.2 * math.sqrt(1.0 / math.prod(shape[1:])))
    if name == "running_var":
        return x.abs() + 0.5
    if name in ("running_mean", "bias"):
        return x * 0.1
    if name == "weight" and len(shape) == 1:  # norm scale
        return 1.0 + x * 0.1
    return x * math.sqrt(1.0 / math.prod(shape[1:]))  # conv / linear weight, unit-variance outputs


def fill_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor of ``state_dict`` replaced by :func:`fill` of its key and shape; BatchNorm's integer
    ``num_batches_tracked`` counters are kept."""
    return {k: v if k.endswith("num_batches_tracked") else fill(k, tuple(v.shape)) for k, v in state_dict.items()}


def checksum(state_dict: dict[str, torch.Tensor]) -> float:
    """Sum of absolute values of the floating tensors (catches a generator that draws other numbers)."""
    return float(sum(v.double().abs().sum() for v in state_dict.values() if v.is_floating_point()))
