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
