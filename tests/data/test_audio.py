"""Tests for ``vidlab.data.audio``.

Golden values: ``tests/assets/audio_librosa.json`` (librosa 0.11 + lws 1.2.8, ``tests/assets/make_audio_fixtures.py``)
for the spectrograms and MMAction2's feature files, ``tests/assets/audio_selector_mmaction2.json`` (MMAction2 1.2.0's
own transforms, ``tests/assets/make_audio_mmaction2.py``) for the clip selection. Media files with sound are written
here with PyAV (a tone of known frequency) and the ``wave`` module.
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from tests.assets.make_audio_fixtures import synthetic_signal
from tests.helpers import write_indexed_video
from vidlab.data.audio import (
    MMACTION2_AUDIO,
    AudioDecodeError,
    AudioFeatureSelector,
    extract_mmaction2_audio_features,
    hz_to_mel,
    load_audio_features,
    log_mel_spectrogram,
    mel_filterbank,
    mel_to_hz,
    mmaction2_audio_features,
    read_audio,
    select_audio_clips,
    stft_magnitude,
)
from vidlab.data.decode import VideoDecodeError

ASSETS = Path(__file__).resolve().parents[1] / "assets"
LIBROSA = json.loads((ASSETS / "audio_librosa.json").read_text())
SELECTOR = json.loads((ASSETS / "audio_selector_mmaction2.json").read_text())


def dense(mel: dict) -> np.ndarray:
    weights = np.zeros(mel["shape"])
    for i, j, v in mel["nonzero"]:
        weights[i, j] = v
    return weights


def dominant_frequency(x: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x))


def write_tone_video(path: Path, freqs: tuple[float, ...], sample_rate: int = 48000, seconds: float = 1.0) -> Path:
    """A video (25 fps, 32x32 H.264) with an AAC track: a sine of ``freqs[c]`` Hz on channel ``c``."""
    layout = {1: "mono", 2: "stereo"}[len(freqs)]
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    samples = np.stack([0.4 * np.sin(2 * np.pi * f * t) for f in freqs]).astype(np.float32)  # (channels, n)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        audio = container.add_stream("aac", rate=sample_rate)
        audio.layout = layout
        for _ in range(int(25 * seconds)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        container.mux(video.encode())
        for start in range(0, samples.shape[1], 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """16-bit PCM wav of ``(channels, n)`` int16 samples."""
    with wave.open(str(path), "wb") as f:
        f.setnchannels(samples.shape[0])
        f.setsampwidth(2)
        f.setframerate(sample_rate)
        f.writeframes(np.ascontiguousarray(samples.T).astype("<i2").tobytes())
    return path


# --------------------------------------------------------------------------------------------------
# spectrograms against librosa


@pytest.mark.parametrize("cfg", LIBROSA["stft"], ids=lambda c: f"nfft{c['n_fft']}_win{c['win_length']}")
def test_stft_magnitude_matches_librosa(cfg):
    mag = stft_magnitude(synthetic_signal(), cfg["n_fft"], cfg["hop_length"], cfg["win_length"])
    assert mag.shape == (cfg["num_frames"], cfg["n_fft"] // 2 + 1)  # (T, F)
    ref = torch.tensor(cfg["magnitude"])
    assert ref.max() > 10
    assert (mag[cfg["frames"]] - ref).abs().max().item() <= 1e-4  # measured <= 7.6e-6 (values up to 53)


@pytest.mark.parametrize("cfg", LIBROSA["mel"], ids=lambda c: f"{c['n_mels']}mels_htk{c['htk']}_norm{c['norm']}")
def test_mel_filterbank_matches_librosa(cfg):
    ref = dense(cfg)
    ours = mel_filterbank(
        cfg["sample_rate"], cfg["n_fft"], cfg["n_mels"], cfg["fmin"], cfg["fmax"], htk=cfg["htk"], norm=cfg["norm"]
    )
    assert ours.dtype == torch.float32 and ours.shape == tuple(cfg["shape"])
    ours = ours.double().numpy()
    assert np.array_equal(ours != 0, ref != 0)  # the same triangle supports
    assert np.abs(ours - ref).max() <= 1e-4
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=0)  # the fixture's 7 significant digits


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_mel_matches_librosa(dtype):
    cfg = LIBROSA["log_mel"]
    db = log_mel_spectrogram(
        torch.from_numpy(synthetic_signal()).to(dtype),
        LIBROSA["signal"]["sample_rate"],
        n_fft=cfg["n_fft"],
        hop_length=cfg["hop_length"],
        win_length=cfg["win_length"],
        n_mels=cfg["n_mels"],
        fmin=cfg["fmin"],
        fmax=cfg["fmax"],
        top_db=cfg["top_db"],
    )
    ref = torch.tensor(cfg["db"], dtype=torch.float64)
    assert db.dtype == dtype and db.shape == ref.shape  # (T, n_mels)
    assert (db.double() - ref).abs().max().item() <= 1e-4  # measured 2.9e-5 (float32), 5e-6 (float64)


def test_mmaction2_features_match_build_audio_features():
    ref = np.array(LIBROSA["mmaction2_features"]["values"], dtype=np.float32)
    feats = mmaction2_audio_features(synthetic_signal())
    n = LIBROSA["signal"]["num_samples"]
    assert feats.dtype == np.float32 and feats.shape == ref.shape == (-(-n // 256) + 1, 80)
    assert 0 <= feats.min() and feats.max() <= 1 and feats.std() > 0.05
    assert np.abs(feats - ref).max() <= 1e-6  # measured 9.8e-8
    with pytest.raises(ValueError, match="16000 Hz"):
        mmaction2_audio_features(synthetic_signal(), sample_rate=22050)
    with pytest.raises(ValueError, match="mono"):
        mmaction2_audio_features(np.zeros((2, 100), np.float32))


def test_log_mel_shapes_and_options():
    x = torch.from_numpy(synthetic_signal())
    batch = log_mel_spectrogram(torch.stack([x, 0.5 * x]), log=None)  # MMAction2 sizes: 80 bins, hop 256
    assert batch.shape == (2, 8000 // 256 + 1, 80)
    assert torch.allclose(batch[1], 0.25 * batch[0], rtol=1e-5, atol=1e-10)  # power scales with amplitude squared
    db = log_mel_spectrogram(x, top_db=None)
    assert torch.allclose(db, 10 * torch.log10(batch[0].clamp_min(1e-10)), atol=1e-4)
    assert torch.allclose(log_mel_spectrogram(x, log="ln"), torch.log(batch[0].clamp_min(1e-10)), atol=1e-5)
    floored = log_mel_spectrogram(x, top_db=20.0)
    assert floored.min().item() == pytest.approx(floored.max().item() - 20.0, abs=1e-4)
    with pytest.raises(ValueError, match="log must be"):
        log_mel_spectrogram(x, log="log10")
    with pytest.raises(TypeError, match="float waveform"):
        stft_magnitude(torch.zeros(100, dtype=torch.int16))
    with pytest.raises(ValueError, match="fmin < fmax"):
        mel_filterbank(16000, 512, fmin=8000.0, fmax=4000.0)


def test_mel_scales():
    assert hz_to_mel(1000.0).item() == pytest.approx(15.0)  # Slaney: 200/3 Hz per mel below 1 kHz
    assert hz_to_mel(6400.0).item() == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4 above
    assert hz_to_mel(700.0, htk=True).item() == pytest.approx(2595 * np.log10(2))
    freqs = torch.tensor([0.0, 100.0, 999.0, 1000.0, 4000.0, 11025.0], dtype=torch.float64)
    for htk in (False, True):
        assert torch.allclose(mel_to_hz(hz_to_mel(freqs, htk), htk), freqs, rtol=1e-12, atol=1e-9)


def test_live_against_librosa():
    """Against an installed librosa (skipped without it): other sizes than the fixture's."""
    librosa = pytest.importorskip("librosa")
    y = synthetic_signal()
    for sr, n_fft, n_mels, fmin, fmax, htk in [(22050, 1024, 64, 30.0, None, False), (16000, 400, 23, 0.0, 6000, True)]:
        ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, dtype=np.float64)
        ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk=htk, dtype=torch.float64).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-14)
    ref = librosa.power_to_db(
        librosa.feature.melspectrogram(y=y.astype(np.float64), sr=16000, n_fft=1024, hop_length=300, n_mels=50)
    ).T
    ours = log_mel_spectrogram(y.astype(np.float64), 16000, 1024, 300, n_mels=50, fmin=0.0, fmax=None).numpy()
    assert np.abs(ours - ref).max() <= 1e-4


# --------------------------------------------------------------------------------------------------
# reading sound from media files


def test_read_audio_from_video_with_sound(tmp_path):
    path = write_tone_video(tmp_path / "tone.mp4", (440.0, 440.0))
    x = read_audio(path, sample_rate=16000)
    assert x.dtype == np.float32 and x.ndim == 1
    assert len(x) / 16000 == pytest.approx(1.0, abs=0.08)  # AAC pads up to one 1024-sample frame
    assert dominant_frequency(x, 16000) == pytest.approx(440.0, abs=2.0)
    assert np.abs(x).max() == pytest.approx(0.4, abs=0.05)
    stereo = read_audio(path, sample_rate=8000, mono=False)
    assert stereo.shape[0] == 2 and stereo.shape[1] == pytest.approx(8000, abs=8000 * 0.08)


def test_read_audio_channels_and_rates(tmp_path):
    """PCM at the requested rate passes through exactly; ``mono`` is the channels' mean; resampling keeps pitch."""
    t = np.arange(16000) / 16000
    pcm = np.stack([np.sin(2 * np.pi * 300 * t), 0.5 * np.sin(2 * np.pi * 2000 * t)]) * 20000
    pcm = pcm.round().astype(np.int16)
    path = write_wav(tmp_path / "two.wav", pcm, 16000)
    both = read_audio(path, sample_rate=16000, mono=False)
    np.testing.assert_array_equal(both, pcm / np.float32(32768))
    np.testing.assert_allclose(read_audio(path, sample_rate=16000), both.mean(axis=0), atol=1e-7)
    left_up = read_audio(path, sample_rate=44100, mono=False)[0]
    assert len(left_up) == pytest.approx(44100, abs=50)
    assert dominant_frequency(left_up, 44100) == pytest.approx(300.0, abs=1.5)
    right_down = read_audio(path, sample_rate=8000, mono=False)[1]
    assert dominant_frequency(right_down, 8000) == pytest.approx(2000.0, abs=1.5)


def test_read_audio_errors_name_the_file(tmp_path):
    silent = write_indexed_video(tmp_path / "silent.mp4", num_frames=4)
    with pytest.raises(AudioDecodeError, match=r"silent\.mp4: contains no audio stream") as info:
        read_audio(silent)
    assert isinstance(info.value, VideoDecodeError) and info.value.path == str(silent)
    with pytest.raises(AudioDecodeError, match=r"nope\.mp4: no such file"):
        read_audio(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(AudioDecodeError, match="empty"):
        read_audio(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a media file at all" * 10)
    with pytest.raises(AudioDecodeError, match=r"junk\.mp4: cannot open"):
        read_audio(tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match="sample_rate"):
        read_audio(silent, sample_rate=0)


def test_extract_mmaction2_features_from_a_file(tmp_path):
    """A 16 kHz wav of the fixture signal gives the script's features up to the 16-bit quantisation."""
    pcm = (synthetic_signal() * 32767).round().astype(np.int16)[None]
    feats = extract_mmaction2_audio_features(write_wav(tmp_path / "sig.wav", pcm, MMACTION2_AUDIO["sample_rate"]))
    ref = np.array(LIBROSA["mmaction2_features"]["values"], dtype=np.float32)
    assert feats.shape == ref.shape
    assert np.abs(feats - ref).max() <= 5e-4  # measured 1.1e-4


# --------------------------------------------------------------------------------------------------
# MMAction2's feature files and clip selection


@pytest.mark.parametrize("case", SELECTOR["cases"], ids=lambda c: c["name"])
def test_select_audio_clips_matches_mmaction2(case):
    """Rows hold ``row + 1`` (0 = padding), so the output names the feature rows MMAction2 picked."""
    features = np.repeat(np.arange(1, case["rows"] + 1, dtype=np.float32)[:, None], case["bins"], axis=1)
    fixed = case["fixed_length"] or SELECTOR["default_fixed_length"]
    clips = select_audio_clips(features, case["frame_inds"], case["total_frames"], case["num_clips"], fixed)
    assert clips.dtype == np.float32
    assert list(clips[:, None].shape) == case["shape"]  # FormatAudioShape's (num_clips, 1, T, F)
    np.testing.assert_array_equal(clips[..., 0], np.array(case["row_ids"]))
    selector = AudioFeatureSelector(fixed) if case["fixed_length"] else AudioFeatureSelector()
    np.testing.assert_array_equal(
        selector(features, case["frame_inds"], case["total_frames"], case["num_clips"]), clips
    )


def test_selector_rows_by_hand():
    """The mapping written out: frames 10..17 of 100 -> rows round(11 / 100 * 50) = 6 to round(18 / 100 * 50) = 9;
    a half-way value rounds to even (frame 4: 5 / 100 * 50 = 2.5 -> 2)."""
    features = np.arange(1, 51, dtype=np.float32)[:, None]
    out = select_audio_clips(features, np.arange(10, 18), total_frames=100, fixed_length=5)
    np.testing.assert_array_equal(out[0, :, 0], [7, 8, 9, 0, 0])  # rows 6, 7, 8; then zero padding
    out = select_audio_clips(features, np.arange(4, 9), total_frames=100, fixed_length=2)
    np.testing.assert_array_equal(out[0, :, 0], [3, 4])  # starts at row 2, cut to 2 rows
    with pytest.raises(ValueError, match="num_clips=3"):
        select_audio_clips(features, np.arange(8), total_frames=100, num_clips=3)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        select_audio_clips(features[:, 0], np.arange(8), total_frames=100)


def test_load_audio_features(tmp_path):
    feats = np.random.default_rng(0).random((37, 80)).astype(np.float64)
    np.save(tmp_path / "a.npy", feats)
    loaded = load_audio_features(tmp_path / "a.npy")
    assert loaded.dtype == np.float32 and np.allclose(loaded, feats)
    with pytest.raises(FileNotFoundError, match=r"b\.npy"):
        load_audio_features(tmp_path / "b.npy")
    stand_in = load_audio_features(tmp_path / "b.npy", missing="zeros")
    ref = SELECTOR["missing_file"]  # what MMAction2's LoadAudioFeature gives for a missing file
    assert list(stand_in.shape) == ref["shape"] and str(stand_in.dtype) == ref["dtype"] and stand_in.max() == ref["max"]
    np.save(tmp_path / "c.npy", np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=r"c\.npy.*\(T, F\)"):
        load_audio_features(tmp_path / "c.npy")
    (tmp_path / "d.npy").write_text("garbage")
    with pytest.raises(ValueError, match=r"d\.npy"):
        load_audio_features(tmp_path / "d.npy")
