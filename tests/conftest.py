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


@pytest.fixture()
def tiny_recipe(synth_tiny, tmp_path) -> Path:
    from vidlab.data.datasets import read_label_map

    num_classes = len(read_label_map(synth_tiny / "label_map.txt"))
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_RECIPE.format(root=synth_tiny, num_classes=num_classes))
    return path


def run_cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m vidlab ...`` for real, in a subprocess."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vidlab", *args], capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO
    )
