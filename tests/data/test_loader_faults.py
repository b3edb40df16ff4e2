"""Data-loader workers that die or hang: a clear DataLoaderError naming the worker, never a hang."""

import os
import signal
import time

import pytest

from tests.conftest import write_tiny_recipe
from tests.helpers import child_pids
from vidlab.config import ConfigError, load_config
from vidlab.data.loader import DataLoaderError, build_loader
from vidlab.errors import VidlabError


@pytest.fixture()
def dataset(synth_tiny, tmp_path):
    from vidlab.engine.builders import build_dataset

    return build_dataset(load_config(write_tiny_recipe(synth_tiny, tmp_path / "r.yaml")), "train")


def _start(dataset, timeout: float):
    before = set(child_pids(os.getpid()))
    batches = iter(build_loader(dataset, 1, train=False, num_workers=2, timeout=timeout))  # 20+ batches
    next(batches)  # both workers are up
    workers = sorted(set(child_pids(os.getpid())) - before)
    assert len(workers) == 2, workers
    return batches, workers


def test_a_killed_worker_is_a_clear_error_naming_it(dataset):
    batches, workers = _start(dataset, timeout=0)
    os.kill(workers[1], signal.SIGKILL)  # what the kernel's OOM killer does
    t0 = time.time()
    with pytest.raises(DataLoaderError, match=rf"DataLoader worker \(pid\(?s?\)? {workers[1]}\)? .*data.num_workers"):
        for _ in batches:
            pass
    assert time.time() - t0 < 30
    del batches


def test_a_stuck_worker_times_out_with_data_timeout(dataset):
    batches, workers = _start(dataset, timeout=3)
    os.kill(workers[1], signal.SIGSTOP)  # alive but never answers: PyTorch alone would wait forever
    t0 = time.time()
    try:
        with pytest.raises(DataLoaderError, match=r"timed out after 3(\.0)? seconds.*data.timeout=3 s") as e:
            for _ in batches:
                pass
    finally:
        os.kill(workers[1], signal.SIGCONT)
    assert 2.5 < time.time() - t0 < 30
    assert isinstance(e.value, VidlabError) and e.value.exit_code == 1
    del batches


def test_data_timeout_must_not_be_negative(tmp_path, synth_tiny):
    with pytest.raises(ConfigError, match="data.timeout"):
        load_config(write_tiny_recipe(synth_tiny, tmp_path / "r.yaml"), ["data.timeout=-1"])
