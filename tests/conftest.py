import functools
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

TINY_RECIPE = """
data:
  root: {root}
  label_map: label_map.txt
  flip_label_map: flip_label_map.json
  pairs: pairs.json
  short_side: 40
  input_format: NCHW
  num_segments: 4
  train_sampler: {{type: SampleFrames, clip_len: 1, frame_interval: 1, num_clips: 4}}
  val_sampler: {{type: SampleFrames, clip_len: 1, frame_interval: 1, num_clips: 4, test_mode: true}}
  train_pipeline:
    - {{type: RandomResizedCrop, area_range: [0.5, 1.0]}}
    - {{type: Resize, scale: [32, 32], keep_ratio: false}}
    - {{type: Flip, flip_ratio: 0.5}}
  val_pipeline:
    - {{type: CenterCrop, crop_size: 32}}
  batch_size: 4
  num_workers: 0
model:
  name: tsn_r18
  num_classes: {num_classes}
optim:
  lr: 0.01
  warmup_epochs: 0.5
train:
  epochs: 2
  max_iters_per_epoch: 3
  seed: 0
"""


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory) -> Path:
    """A small SynthActions set (real H.264 files) shared by the engine and CLI tests."""
    from vidlab.data.synthetic import generate_synth_actions

    out = tmp_path_factory.mktemp("synth_tiny")
    generate_synth_actions(out, num_videos=36, seed=0, workers=1)
    return out


def write_tiny_recipe(root: Path, path: Path) -> Path:
    """``TINY_RECIPE`` on the SynthActions set at ``root``, written to ``path``."""
    from vidlab.data.datasets import read_label_map

    num_classes = len(read_label_map(root / "label_map.txt"))
    path.write_text(TINY_RECIPE.format(root=root, num_classes=num_classes))
    return path


@pytest.fixture()
def tiny_recipe(synth_tiny, tmp_path) -> Path:
    return write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")


def run_cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m vidlab ...`` for real, in a subprocess."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vidlab", *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO
    )


@pytest.fixture()
def cli_inprocess(capsys):
    """``run_cli`` in this process: ``vidlab.cli.main`` with the same arguments (one intra-op thread, as run_cli),
    its exit status and captured stdout / stderr, without a fresh interpreter's imports (seconds per call). For
    user errors and for repeated runs of a command whose command line runs elsewhere in the suite (``run_cli``).
    An exception other than ``SystemExit`` (what would be a traceback on the command line) propagates and fails the
    test. What a command changes process-wide is put back afterwards: the ``vidlab`` logger's handlers and level,
    torch's thread count and deterministic mode, and the random states it seeds."""
    import random

    import numpy as np
    import torch

    from vidlab.cli import main

    vidlab_logger = logging.getLogger("vidlab")

    def run(*args: str) -> subprocess.CompletedProcess:
        handlers, level = list(vidlab_logger.handlers), vidlab_logger.level
        threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
        rng = torch.get_rng_state(), np.random.get_state(), random.getstate()
        cublas = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
        for handler in handlers:  # the command sets up its own, on the captured stderr
            vidlab_logger.removeHandler(handler)
        torch.set_num_threads(1)  # as run_cli's OMP_NUM_THREADS=1: the same numbers as the command line
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        finally:
            for handler in list(vidlab_logger.handlers):
                vidlab_logger.removeHandler(handler)
                handler.close()
            for handler in handlers:
                vidlab_logger.addHandler(handler)
            vidlab_logger.setLevel(level)
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)
            torch.set_rng_state(rng[0])
            np.random.set_state(rng[1])
            random.setstate(rng[2])
            if cublas is None:
                os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["vidlab", *args], code, out, err)

    return run


def skip_on_meta(fn):
    """``fn(tensor, ...)``, or ``tensor`` itself where it is a meta tensor (it has no values to compute)."""
    import torch

    @functools.wraps(fn)
    def wrapper(tensor, *args, **kwargs):
        return tensor if isinstance(tensor, torch.Tensor) and tensor.is_meta else fn(tensor, *args, **kwargs)

    return wrapper


@pytest.fixture()
def no_init_on_meta(monkeypatch):
    """``torch.nn.init``'s functions (kaiming_normal_, trunc_normal_, zeros_, ...) leave meta tensors as they are,
    where torch would spend its time in Python decompositions computing nothing. For tests that build models on the
    meta device for their shapes and parameter counts only (``ModelInfo.num_params``, FLOP counts)."""
    import torch

    for name in dir(torch.nn.init):
        if name.endswith("_") and not name.startswith("_"):
            monkeypatch.setattr(torch.nn.init, name, skip_on_meta(getattr(torch.nn.init, name)))
