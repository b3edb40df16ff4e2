"""Generated documentation stays true to the code."""

import difflib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from vidlab.models.layers import selective_scan as scan_module

REPO = Path(__file__).resolve().parents[1]
STALE = "docs/MODEL_ZOO.md is stale; run `python benchmarks/model_zoo.py`"


def _scan_inputs(device: str = "cpu") -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    b, d, n, length = 2, 8, 4, 37
    u, delta = (torch.randn(b, d, length, generator=gen) for _ in range(2))
    B, C = (torch.randn(b, n, length, generator=gen) for _ in range(2))
    return tuple(t.to(device) for t in (u, delta, -torch.rand(d, n, generator=gen), B, C))


def test_selective_scan_does_no_counted_work_and_has_no_meta_kernel():
    """What lets the model-zoo check below skip the scan: FlopCounterMode counts nothing inside it (element-wise
    products and sums only), and on the meta device it fails, so ``count_macs`` counts VideoMamba on CPU tensors."""
    u = _scan_inputs()[0]
    with FlopCounterMode(display=False) as counter:
        y = scan_module.selective_scan(*_scan_inputs(), D=torch.ones(u.shape[1]), z=u, delta_softplus=True)
    assert y.shape == u.shape and torch.isfinite(y).all()
    assert counter.get_total_flops() == 0, counter.get_flop_counts()
    with pytest.raises((NotImplementedError, RuntimeError)):  # the exceptions count_macs falls back on
        scan_module.selective_scan(*_scan_inputs("meta"))


def _model_zoo(monkeypatch):
    """``benchmarks/model_zoo.py`` as a module (registered for the run of the test only)."""
    spec = importlib.util.spec_from_file_location("model_zoo", REPO / "benchmarks" / "model_zoo.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "model_zoo", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_model_zoo_doc_is_up_to_date(monkeypatch):
    """``benchmarks/model_zoo.py --check`` without the minute it spends running VideoMamba's selective scan on CPU
    at full size: the scan (where FlopCounterMode counts nothing, test above) returns zeros of its output's shape,
    on the meta device too, and a model that reached it is reported as counted on CPU tensors, as the real scan's
    meta failure makes ``count_macs`` do. The counts are the same: FlopCounterMode counts from shapes alone.
    ``test_model_zoo_doc_is_up_to_date_unpatched`` (slow) runs the script itself."""
    zoo = _model_zoo(monkeypatch)
    reached = []

    def apply(u, delta, A, B, C, chunk, step):
        reached.append(u.device.type)
        return torch.zeros(u.shape, dtype=torch.float32, device=u.device)  # (b, L, d), float32 like the scan's

    real_count_macs = zoo.count_macs

    def count_macs(name, shape, **kwargs):
        reached.clear()
        macs, fallback = real_count_macs(name, shape, **kwargs)
        return macs, fallback or "meta" in reached

    monkeypatch.setattr(scan_module._Scan, "apply", apply)
    monkeypatch.setattr(zoo, "count_macs", count_macs)
    threads = torch.get_num_threads()
    try:
        text = zoo.generate()
    finally:
        torch.set_num_threads(threads)  # generate() runs single-threaded
    current = (REPO / "docs" / "MODEL_ZOO.md").read_text()
    diff = difflib.unified_diff(current.splitlines(True), text.splitlines(True), "docs/MODEL_ZOO.md", "generated")
    assert current == text, STALE + "\n" + "".join(diff)


@pytest.mark.slow
def test_model_zoo_doc_is_up_to_date_unpatched():
    res = subprocess.run(
        [sys.executable, "benchmarks/model_zoo.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, f"{STALE}\n{res.stdout}{res.stderr}"
