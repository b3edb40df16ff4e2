"""Audio recognition data end to end: SynthActions' class-dependent sound track, the audio datasets (the videos'
own sound, MMAction2's feature lists), and a short `vidlab train` / `vidlab test` of MMAction2's audio recipe."""

import json

import numpy as np
import pytest
import torch

from vidlab.config import load_config
from vidlab.data.audio import extract_mmaction2_audio_features, read_audio
from vidlab.data.synthetic import Variant, generate_synth_actions, render_synth_video
from vidlab.data.synthetic_audio import SOUND_OF_CLASS, TONES_HZ
from vidlab.engine.builders import build_dataset


@pytest.fixture(scope="module")
def synth_sound(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_audio")
    generate_synth_actions(out, num_videos=24, seed=3, workers=1, sizes=[(64, 48)], variant=Variant(audio=True),
                           progress=False)  # fmt: skip
    return out


def _dominant_hz(wave: np.ndarray, sr: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * sr / len(wave))


def test_the_sound_track_depends_on_the_class(synth_sound):
    meta = json.loads((synth_sound / "meta.json").read_text())
    assert meta["audio"] is True
    for video in meta["videos"][:12]:
        wave = read_audio(synth_sound / video["video"])
        assert abs(len(wave) / 16000 - video["duration"]) < 0.2  # as long as the video (AAC adds a few ms)
        tone = TONES_HZ[SOUND_OF_CLASS[video["label"]]]
        if tone is not None:
            assert abs(_dominant_hz(wave) - tone) < 0.04 * tone, video["video"]
    # the pictures are those of the same dataset without sound
    frames, _ = render_synth_video(5, seed=3, sizes=[(64, 48)], variant=Variant(audio=True))
    assert np.array_equal(frames, render_synth_video(5, seed=3, sizes=[(64, 48)])[0])


def _cfg(root, fmt="audio", train_list="train.txt"):
    return load_config("configs/audio/tsn_r18_audio_synth.yaml", [
        f"data.root={root}", f"data.format={fmt}", f"data.train_list={train_list}", "data.num_workers=0",
        "data.batch_size=4", "train.epochs=1", "train.max_iters_per_epoch=2",
    ])  # fmt: skip


def test_audio_datasets_from_videos_and_from_feature_files(synth_sound, tmp_path):
    cfg = _cfg(synth_sound)
    test = build_dataset(cfg, "test")
    item = test[0]
    assert item["audio"].shape == (10, 1, 128, 80) and item["audio"].dtype == torch.float32
    assert 0 <= float(item["audio"].min()) and float(item["audio"].max()) <= 1  # MMAction2's normalised dB
    # the same clips from an MMAction2-style .npy feature file listed as `path total_frames label`
    first = test.items[0]
    np.save(tmp_path / "first.npy", extract_mmaction2_audio_features(first.path))
    (tmp_path / "test_features.txt").write_text(f"first.npy {item['meta']['total_frames']} {first.label[0]}\n")
    cfg = load_config(None, [
        f"data.root={tmp_path}", "data.format=audio_feature", "data.test_list=test_features.txt",
        "model.name=tsn_r18_audio", "model.num_classes=12", "data.label_map=null",
        "data.val_sampler={type: SampleFrames, clip_len: 64, num_clips: 10, test_mode: true}",
    ])  # fmt: skip
    from_files = build_dataset(cfg, "test")[0]
    assert torch.equal(from_files["audio"], item["audio"])


def test_audio_recipe_trains_and_tests(synth_sound, tmp_path, cli_inprocess):
    work = tmp_path / "run"
    args = [f"data.root={synth_sound}", "data.num_workers=0", "data.batch_size=4", "train.epochs=1",
            "train.max_iters_per_epoch=2", f"work_dir={work}"]  # fmt: skip
    out = cli_inprocess("train", "configs/audio/tsn_r18_audio_synth.yaml", *args)
    assert "RESULT top1=" in out.stdout
    out = cli_inprocess(
        "test",
        "--checkpoint",
        str(work / "best.pth"),
        "--list",
        str(synth_sound / "test.txt"),
        "--root",
        str(synth_sound),
        "--out",
        str(tmp_path / "audio.json"),
        "data.num_workers=0",
    )
    doc = json.loads((tmp_path / "audio.json").read_text())
    assert len(doc["videos"]) == len(doc["scores"]) > 0 and "RESULT top1=" in out.stdout
    out = cli_inprocess("predict", doc["videos"][0], "--checkpoint", str(work / "best.pth"), "--topk", "3")
    assert len(out.stdout.strip().splitlines()) == 3  # '<rank> <class name> <prob>' from the video's own sound
