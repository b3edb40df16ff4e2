"""Write the MMAction2 audio fixtures: ``mmaction2_audioonly_r50.json``, ``mmaction2_tsn_r18_audio.json`` (recognizer
parity) and ``audio_selector_mmaction2.json`` (feature-file clip selection).

Run in the reference environment (MMAction2 1.2.0, not a vidlab dependency)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_audio_mmaction2.py

Recognizers: each ``RecognizerAudio`` is built from its config in MMAction2's ``configs/recognition_audio``. The
full-size build (the config's 400 classes) gives the parameter count; a build with 5 classes, in eval mode, whose
state-dict tensors are overwritten by :func:`fixture_fill.fill` (a function of key and shape, so no weights are
stored), gives the logits of a small seeded ``(B, 1, T, F)`` input (``extract_feat(stage='head')``, one clip per
sample) and, for a ``(1, V, 1, T, F)`` input, the ``average_clip`` scores of the head's ``average_clips='prob'``
(mean softmax over the V clips). The JSON layout is ``make_mmaction2_fixtures.py``'s, so
``tests/models/test_convert.py`` checks these two as well.

Selector: MMAction2's own test-pipeline transforms (``LoadAudioFeature``, ``SampleFrames``, ``AudioFeatureSelector``,
``FormatAudioShape``) run on feature files whose row ``r`` holds the value ``r + 1`` (zero padding stays 0), so the
selected rows can be read off the output; recorded: the sampled frame indices, the row ids of every output row and
the output shape. One case loads a missing file (``LoadAudioFeature``'s zero 640 x 80 stand-in).
"""

import json
import tempfile
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)
from fixture_fill import checksum, fill_state_dict  # beside this script

# isort: split
import mmaction
import numpy as np
import torch
from mmaction.registry import MODELS, TRANSFORMS
from mmaction.utils import register_all_modules
from mmengine.config import Config

CONFIGS = Path(mmaction.__file__).parent / ".mim" / "configs" / "recognition_audio"
NUM_CLASSES = 5
INPUT_SEED = 1234
VIEWS_SEED = 4321
# vidlab name -> (config under configs/recognition_audio, input (B, 1, T, F), multi-view input (1, V, 1, T, F))
CASES = {
    "audioonly_r50": (
        "audioonly/audioonly_r50_8xb160-64x1x1-100e_kinetics400-audio-feature.py",
        (2, 1, 64, 40),
        (1, 3, 1, 48, 40),
    ),
    "tsn_r18_audio": (
        "resnet/tsn_r18_8xb320-64x1x1-100e_kinetics400-audio-feature.py",
        (2, 1, 64, 40),
        (1, 3, 1, 64, 48),
    ),
}
# (name, total_frames of the video, feature rows, mel bins, SampleFrames arguments, fixed_length or None: default)
SELECTOR_CASES = [
    ("test_10clips", 300, 625, 4, dict(clip_len=64, frame_interval=1, num_clips=10, test_mode=True), None),
    ("val_1clip", 250, 520, 3, dict(clip_len=64, frame_interval=1, num_clips=1, test_mode=True), None),
    ("train_1clip", 300, 625, 3, dict(clip_len=64, frame_interval=1, num_clips=1), None),
    ("short_video_loop", 40, 83, 3, dict(clip_len=64, frame_interval=1, num_clips=2, test_mode=True), None),
    ("fixed_length_32", 120, 250, 2, dict(clip_len=16, frame_interval=2, num_clips=3, test_mode=True), 32),
    ("fewer_rows_than_frames", 300, 100, 2, dict(clip_len=8, frame_interval=4, num_clips=4, test_mode=True), 16),
]


def build(config: str, num_classes: int | None):
    cfg = Config.fromfile(str(CONFIGS / config)).model
    if num_classes is not None:
        cfg.cls_head.num_classes = num_classes
    return MODELS.build(cfg).eval()  # no init_weights: every tensor is filled (or only counted)


def seeded(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def recognizer_fixture(name: str, config: str, in_shape: tuple, views_shape: tuple) -> dict:
    full = build(config, None)  # the config's class count
    num_params, num_params_classes = sum(p.numel() for p in full.parameters()), full.cls_head.num_classes
    model = build(config, NUM_CLASSES)
    sd = model.state_dict()
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    with torch.no_grad():
        # RecognizerAudio folds (N, num_clips, 1, T, F) into the batch: one clip per sample here
        logits, _ = model.extract_feat(seeded(in_shape, INPUT_SEED).unsqueeze(1), stage="head")
        views = seeded(views_shape, VIEWS_SEED)
        clip_scores, _ = model.extract_feat(views, stage="head")  # (V, K)
        averaged = model.cls_head.average_clip(clip_scores, num_segs=views_shape[1])
    return {
        "source": f"mmaction2 {mmaction.__version__}, recognition_audio/{config}",
        "model": name,
        "kwargs": {},
        "num_classes": NUM_CLASSES,
        "recognizer_2d": False,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(in_shape),
        "logits": logits.tolist(),
        "num_params": num_params,
        "num_params_classes": num_params_classes,
        "views": {
            "input_seed": VIEWS_SEED,
            "input_shape": list(views_shape),
            "average_clips": model.cls_head.average_clips,
            "scores": averaged.tolist(),
        },
    }


def selector_case(root: Path, name: str, total: int, rows: int, bins: int, sampler: dict, fixed: int | None) -> dict:
    path = root / f"{name}.npy"
    np.save(path, np.repeat(np.arange(1, rows + 1, dtype=np.float32)[:, None], bins, axis=1))
    pipeline = [
        TRANSFORMS.build(dict(type="LoadAudioFeature")),
        TRANSFORMS.build(dict(type="SampleFrames", **sampler)),
        TRANSFORMS.build(dict(type="AudioFeatureSelector", **({} if fixed is None else {"fixed_length": fixed}))),
        TRANSFORMS.build(dict(type="FormatAudioShape", input_format="NCTF")),
    ]
    np.random.seed(7)  # SampleFrames' training-mode offsets
    results = {"audio_path": str(path), "total_frames": total, "start_index": 0}
    for t in pipeline:
        results = t(results)
    audios = results["audios"]  # (num_clips, 1, fixed_length, F)
    assert (audios == audios[..., :1]).all()
    return {
        "name": name,
        "total_frames": total,
        "rows": rows,
        "bins": bins,
        "sampler": sampler,
        "fixed_length": fixed,
        "num_clips": int(results["num_clips"]),
        "frame_inds": results["frame_inds"].tolist(),
        "shape": list(audios.shape),
        "row_ids": audios[:, 0, :, 0].astype(int).tolist(),  # r + 1 for feature row r, 0 for padding
    }


def selector_fixture() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cases = [selector_case(root, *case) for case in SELECTOR_CASES]
        missing = TRANSFORMS.build(dict(type="LoadAudioFeature"))({"audio_path": str(root / "missing.npy")})
    stand_in = missing["audios"]
    return {
        "source": f"mmaction2 {mmaction.__version__}: LoadAudioFeature, SampleFrames, AudioFeatureSelector, "
        "FormatAudioShape(input_format='NCTF')",
        "default_fixed_length": TRANSFORMS.build(dict(type="AudioFeatureSelector")).fixed_length,
        "missing_file": {"shape": list(stand_in.shape), "dtype": str(stand_in.dtype), "max": float(stand_in.max())},
        "cases": cases,
    }


def main() -> None:
    register_all_modules()
    assets = Path(__file__).parent
    for name, (config, in_shape, views_shape) in CASES.items():
        out = recognizer_fixture(name, config, in_shape, views_shape)
        (assets / f"mmaction2_{name}.json").write_text(json.dumps(out) + "\n")
        print(f"{name}: {len(out['keys'])} keys, {out['num_params']} params at 400 classes")
    (assets / "audio_selector_mmaction2.json").write_text(json.dumps(selector_fixture()) + "\n")
    print("wrote audio_selector_mmaction2.json")


if __name__ == "__main__":
    main()
