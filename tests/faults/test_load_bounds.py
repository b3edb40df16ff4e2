"""Long loader runs stay bounded: no file-handle leak and flat resident memory over many epochs with workers
(benchmarks/loader_soak.py runs the same loop for hours)."""

import sys

import pytest

from tests.conftest import REPO, write_tiny_recipe

sys.path.insert(0, str(REPO / "benchmarks"))
from loader_soak import soak  # noqa: E402


def _check(rows, rss_mib: float) -> None:
    first, end = rows[0][3], rows[-1][3]
    assert end["main_fds"] == first["main_fds"], rows  # every worker's pipes and every video file closed
    assert end["main_rss_mib"] - first["main_rss_mib"] < rss_mib, rows
    assert any(r[3]["workers"] == 2 for r in rows[1:-1]) or len(rows) == 2  # sampled while workers ran


def test_loader_epochs_leak_no_file_handles(synth_tiny, tmp_path):
    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    rows = soak(str(recipe), [], minutes=0, epochs=6, workers=2, every=0.5)
    _check(rows, rss_mib=64)


@pytest.mark.slow
@pytest.mark.faults
def test_a_hundred_loader_epochs_stay_flat(synth_tiny, tmp_path):
    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    rows = soak(str(recipe), [], minutes=0, epochs=100, workers=2, every=5)
    _check(rows, rss_mib=32)
    print("epochs, videos read, main RSS MiB, main fds:", [(r[1], r[2], round(r[3]["main_rss_mib"]), r[3]["main_fds"])
                                                          for r in rows])  # fmt: skip
