"""Long loader runs stay bounded: no file-handle leak and flat resident memory over many epochs with workers
(benchmarks/loader_soak.py runs the same loop for hours)."""

import sys

import pytest

from tests.conftest import REPO, write_tiny_recipe

sys.path.insert(0, str(REPO / "benchmarks"))
from loader_soak import soak  # noqa: E402


def _check(rows, rss_mib: float) -> None:
    ends = [r[3] for r in rows if r[3].get("epoch_end")]  # after each epoch: workers gone, garbage collected
    # no growth with the epochs: a leak of one descriptor per video or per epoch would raise both of the last two
    # counts (the test process's own descriptors may differ by one or two between the first two epochs: lazily
    # opened files, the shm manager; and a finished epoch's worker pipe may close a moment after its sample)
    assert min(e["main_fds"] for e in ends[-2:]) <= max(e["main_fds"] for e in ends[:2]), rows
    assert ends[-1]["main_rss_mib"] - ends[0]["main_rss_mib"] < rss_mib, rows
    assert any(r[3]["workers"] == 2 for r in rows if not r[3].get("epoch_end"))  # sampled while workers ran


def test_loader_epochs_leak_no_file_handles(synth_tiny, tmp_path):
    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    rows = soak(str(recipe), [], minutes=0, epochs=6, workers=2, every=0)
    _check(rows, rss_mib=64)


@pytest.mark.slow
@pytest.mark.faults
def test_a_hundred_loader_epochs_stay_flat(synth_tiny, tmp_path):
    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    rows = soak(str(recipe), [], minutes=0, epochs=100, workers=2, every=1)
    _check(rows, rss_mib=32)
    ends = [(r[1], r[2], round(r[3]["main_rss_mib"]), r[3]["main_fds"]) for r in rows if r[3].get("epoch_end")]
    print("(epoch, videos read, main RSS MiB, main fds) after epochs 1, 2, 50, 100:", [ends[i] for i in (0, 1, 49, 99)])
