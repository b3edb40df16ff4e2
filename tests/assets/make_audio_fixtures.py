"""Write tests/assets/audio_librosa.json: librosa's STFT magnitudes, mel filters and log-mel spectrogram, and
MMAction2's audio features, of a fixed synthetic signal, for ``tests/data/test_audio.py``.

Run in a scratch environment with librosa and lws (neither is a vidlab dependency)::

    python3 -m venv /tmp/refs/audio && /tmp/refs/audio/bin/pip install librosa numpy cython setuptools
    # lws 1.2.8's shipped C++ predates Python 3.11: build it from its .pyx
    /tmp/refs/audio/bin/pip download --no-deps --no-binary :all: lws==1.2.8   # then unpack, and in its folder:
    LWS_USE_CYTHON=1 /tmp/refs/audio/bin/pip install --no-build-isolation .
    /tmp/refs/audio/bin/python tests/assets/make_audio_fixtures.py

The signal (:func:`synthetic_signal`, also imported by the test; librosa is only imported by :func:`main`) is 0.5 s
at 16 kHz: two tones (440 Hz, 1250 Hz), a 200 -> 1700 Hz chirp and a deterministic noise-like term, as float32.

Stored: STFT magnitudes (``np.abs(librosa.stft(...))``, librosa's default centring with zero padding) at a few
frames of two settings; four filterbanks (``librosa.filters.mel``) as their nonzero entries; one
``power_to_db(melspectrogram(...), top_db=80)`` (signal and filters in float64); and the features MMAction2's
``tools/data/build_audio_features.py`` computes for the signal as if ``librosa.load`` had returned it (RMS
normalisation, ``lws.lws(512, 256, mode='speech').stft``, 80 Slaney mel filters 125 - 7600 Hz on the magnitude, dB,
``[0, 1]`` scaling), re-derived here from the script's steps with the library calls it makes (the script itself
passes ``librosa.filters.mel`` positional arguments, which librosa >= 0.10 rejects).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
NUM_SAMPLES = 8000
STFTS = [
    {"n_fft": 512, "hop_length": 160, "win_length": 400, "frames": [0, 1, 2, 25, 49, 50]},
    {"n_fft": 256, "hop_length": 128, "win_length": None, "frames": [0, 1, 31, 62]},
]
MELS = [
    {"sample_rate": 16000, "n_fft": 512, "n_mels": 40, "fmin": 0.0, "fmax": None, "htk": False, "norm": "slaney"},
    {"sample_rate": 16000, "n_fft": 512, "n_mels": 40, "fmin": 0.0, "fmax": None, "htk": True, "norm": "slaney"},
    {"sample_rate": 16000, "n_fft": 512, "n_mels": 80, "fmin": 125.0, "fmax": 7600.0, "htk": False, "norm": "slaney"},
    {"sample_rate": 22050, "n_fft": 1024, "n_mels": 64, "fmin": 50.0, "fmax": 9000.0, "htk": True, "norm": None},
]
LOG_MEL = {"n_fft": 512, "hop_length": 160, "win_length": 400, "n_mels": 40, "fmin": 0.0, "fmax": 8000.0}


def synthetic_signal() -> np.ndarray:
    """The fixture's 0.5 s test signal at 16 kHz, float32 (computed in float64)."""
    t = np.arange(NUM_SAMPLES, dtype=np.float64) / SAMPLE_RATE
    tones = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 1250 * t + 0.3)
    chirp = 0.15 * np.sin(2 * np.pi * (200 * t + 1500 * t**2))
    hiss = 0.05 * np.sin(np.arange(NUM_SAMPLES, dtype=np.float64) ** 2 * 0.7071)
    return (tones + chirp + hiss).astype(np.float32)


def r(values) -> list:
    """Nested lists of floats rounded to 7 significant digits (float32 carries about 7)."""
    return np.vectorize(lambda v: float(f"{v:.7g}"), otypes=[float])(np.asarray(values, dtype=np.float64)).tolist()


def mmaction2_features(librosa, lws, wav: np.ndarray) -> np.ndarray:
    """``build_audio_features.py``'s ``read_audio`` (after loading) + ``audio_to_spectrogram`` (``'lws'``)."""
    rms = np.maximum(1e-4, np.sqrt(np.mean(wav**2)))  # audio_normalize(desired_rms=0.1, eps=1e-4)
    wav = wav * (0.1 / rms)
    spec = lws.lws(512, 256, mode="speech").stft(wav).T  # (257, T)
    basis = librosa.filters.mel(sr=16000, n_fft=512, fmin=125, fmax=7600, n_mels=80)
    min_level = np.exp(-100 / 20 * np.log(10))
    db = 20 * np.log10(np.maximum(min_level, np.dot(basis, np.abs(spec)))) - 20
    return np.clip((db + 100) / 100, 0, 1).astype(np.float32).T  # (T, 80)


def main() -> None:
    import librosa
    import lws

    y = synthetic_signal()
    out = {
        "source": f"librosa {librosa.__version__}, lws {lws.__version__}, numpy {np.__version__}",
        "signal": {"sample_rate": SAMPLE_RATE, "num_samples": NUM_SAMPLES},
        "stft": [],
        "mel": [],
    }
    for cfg in STFTS:
        mag = np.abs(librosa.stft(y, n_fft=cfg["n_fft"], hop_length=cfg["hop_length"], win_length=cfg["win_length"]))
        out["stft"].append({**cfg, "num_frames": mag.shape[1], "magnitude": r(mag[:, cfg["frames"]].T)})
    for cfg in MELS:
        weights = librosa.filters.mel(
            sr=cfg["sample_rate"],
            n_fft=cfg["n_fft"],
            n_mels=cfg["n_mels"],
            fmin=cfg["fmin"],
            fmax=cfg["fmax"],
            htk=cfg["htk"],
            norm=cfg["norm"],
        )
        rows, cols = np.nonzero(weights)
        nonzero = [[int(i), int(j), float(f"{weights[i, j]:.7g}")] for i, j in zip(rows, cols)]
        out["mel"].append({**cfg, "shape": list(weights.shape), "nonzero": nonzero})
    cfg = LOG_MEL
    mel = librosa.feature.melspectrogram(  # float64: float32 round-off reaches ~3e-5 dB in quiet bins
        y=y.astype(np.float64),
        sr=SAMPLE_RATE,
        dtype=np.float64,
        n_fft=cfg["n_fft"],
        hop_length=cfg["hop_length"],
        win_length=cfg["win_length"],
        n_mels=cfg["n_mels"],
        fmin=cfg["fmin"],
        fmax=cfg["fmax"],
    )
    out["log_mel"] = {**cfg, "top_db": 80.0, "db": r(librosa.power_to_db(mel, top_db=80.0).T)}  # (T, n_mels)
    feats = mmaction2_features(librosa, lws, y)
    out["mmaction2_features"] = {"shape": list(feats.shape), "values": r(feats)}
    path = Path(__file__).with_name("audio_librosa.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size} bytes): features {feats.shape}, log-mel {mel.T.shape}")


if __name__ == "__main__":
    main()
