"""Record the per-step training losses of a small fixed recipe (the golden-loss fixture).

Run from the repository root: ``python tests/assets/make_golden_losses.py``. It generates 36 SynthActions videos,
trains TSM-R18 for 30 optimizer steps (deterministic mode, fp32, one process, one thread, no loader workers) and
writes ``tests/assets/golden_losses.json`` (one list per CPU capability). ``tests/engine/test_golden_losses.py``
retrains the same recipe and compares. The fixture was recorded before the engine was split into task objects
(weight decay then applied to every parameter: the test sets ``optim.decay_norm_bias=true``); any later change of
the loop, the data path or the models that moves these numbers is a behaviour change.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parent

RECIPE = """
data:
  root: {root}
  label_map: label_map.txt
  flip_label_map: flip_label_map.json
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
  name: tsm_r18
  num_classes: 12
optim:
  name: sgd
  lr: 0.01
  weight_decay: 0.0001
  warmup_epochs: 1
  grad_clip: 20.0
train:
  epochs: 5
  amp: none
  seed: 0
  deterministic: true
  threads: 1
  val_interval: 100
work_dir: {work_dir}
"""
NUM_VIDEOS = 36


def make_data(out: Path) -> Path:
    from vidlab.data.synthetic import generate_synth_actions

    generate_synth_actions(out, num_videos=NUM_VIDEOS, seed=0, workers=1)
    return out


def write_recipe(path: Path, root: Path, work_dir: Path) -> Path:
    path.write_text(RECIPE.format(root=root, work_dir=work_dir))
    return path


def record_losses(recipe: Path, overrides: list[str] = ()) -> list[float]:
    """Per-micro-step losses of the pre-task engine (``train_step`` returned the loss of each step)."""
    import vidlab.engine.train as engine
    from vidlab.config import load_config

    losses = []
    step = engine.train_step

    def spy(*args, **kwargs):
        loss = step(*args, **kwargs)
        losses.append(loss)
        return loss

    engine.train_step = spy
    try:
        engine.train(load_config(recipe, list(overrides)))
    finally:
        engine.train_step = step
    return losses


def golden_key() -> str:
    """The key of this machine's list: ATen's CPU capability, plus ``+avx512_fp16`` on CPUs with AVX512-FP16 (Intel
    Sapphire Rapids and later), whose kernels round differently from other CPUs of the same capability (AMD Zen 4),
    with PyTorch capped to AVX2 (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``) as well."""
    import torch

    key = torch.backends.cpu.get_cpu_capability()
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    if "avx512_fp16" in flags:
        key += "+avx512_fp16"
    return key


def main() -> None:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_data(tmp / "synth")
        recipe = write_recipe(tmp / "golden.yaml", root, tmp / "run")
        losses = record_losses(recipe, ["optim.decay_norm_bias=true"])  # as the test runs it (see above)
    # Kernels differ per CPU capability (AVX2 / AVX512), and so do the last bits: one list each. Run again with
    # ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 machine to record the AVX2 list.
    path = ASSETS / "golden_losses.json"
    doc = json.loads(path.read_text()) if path.is_file() else {"recipe": "tests/assets/make_golden_losses.py RECIPE"}
    doc["torch"] = torch.__version__
    doc.setdefault("losses", {})[golden_key()] = losses
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{len(losses)} losses: {losses[0]:.6f} ... {losses[-1]:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
