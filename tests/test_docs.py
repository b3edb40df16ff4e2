"""Generated documentation stays true to the code."""

import difflib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tests.conftest import skip_on_meta
from vidlab.models.layers import selective_scan as scan_module

REPO = Path(__file__).resolve().parents[1]
STALE = "docs/MODEL_ZOO.md is stale; run `python benchmarks/model_zoo.py`"


def _scan_inputs(device: str = "cpu") -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    b, d, n, length = 2, 8, 4, 37
    u, delta = (torch.randn(b, d, length, generator=gen) for _ in range(2))
    B, C = (torch.randn(b, n, length, generator=gen) for _ in range(2))
    return tuple(t.to(device) for t in (u, delta, -torch.rand(d, n, generator=gen), B, C))


def test_what_the_model_zoo_check_skips_counts_nothing():
    """What lets the model-zoo check below skip work: FlopCounterMode counts nothing in the selective scan
    (element-wise products and sums only), batch norm or weight init; and the scan fails on the meta device, so
    ``count_macs`` counts VideoMamba on CPU tensors."""
    u = _scan_inputs()[0]
    bn = torch.nn.BatchNorm3d(4).eval()
    with FlopCounterMode(display=False) as counter:
        y = scan_module.selective_scan(*_scan_inputs(), D=torch.ones(u.shape[1]), z=u, delta_softplus=True)
        bn(torch.randn(2, 4, 3, 5, 5))
        torch.nn.init.kaiming_normal_(torch.empty(8, 4, 3, 3, 3), mode="fan_out", nonlinearity="relu")
        torch.nn.init.trunc_normal_(torch.empty(16, 8), std=0.02)
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


def test_model_zoo_doc_is_up_to_date(monkeypatch, no_init_on_meta):
    """``benchmarks/model_zoo.py --check`` without the work that cannot change the document, about three quarters of
    the script's time (``test_model_zoo_doc_is_up_to_date_unpatched``, slow, runs the script itself):

    - VideoMamba's selective scan, which has no meta kernel and runs for a minute on CPU at full size: it returns
      zeros of its output's shape (on the meta device too) and a model that reached it is reported as counted on CPU
      tensors, as the real scan's meta failure makes ``count_macs`` do;
    - weight init (fixture ``no_init_on_meta``) and batch norm on the meta device, where torch computes nothing but
      spends seconds in Python decompositions: they return their input.

    No count changes: FlopCounterMode counts convolutions, matrix products and attention from shapes alone, none of
    which is inside these (``test_what_the_model_zoo_check_skips_counts_nothing``), and parameter
    counts are numels."""
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
    monkeypatch.setattr(torch.nn.functional, "batch_norm", skip_on_meta(torch.nn.functional.batch_norm))
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
