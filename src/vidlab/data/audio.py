"""Audio input: a file's sound track as a waveform, log-mel spectrograms in PyTorch, and MMAction2's audio-feature
files with its clip selection.

Waveforms. :func:`read_audio` decodes the first audio stream of a video (or audio) file with PyAV and resamples it
with PyAV's ``AudioResampler`` (FFmpeg's swresample) to float32 at ``sample_rate``; ``mono=True`` averages the
channels (as librosa's ``to_mono``). A file without an audio stream raises :class:`AudioDecodeError`, a
:class:`~vidlab.data.decode.VideoDecodeError`, naming the file.

Spectrograms. Every spectrogram here is laid out ``(..., T, F)``: time frames as rows, frequency bins as columns,
the layout of MMAction2's feature files and of the audio models' input ``(B, 1, T, F)``
(:mod:`vidlab.models.resnet_audio`). :func:`mel_filterbank` builds librosa's filters (``librosa.filters.mel``):
triangles equally spaced on the Slaney mel scale (linear below 1 kHz, logarithmic above), each scaled to unit area
(``norm="slaney"``), or on the HTK scale (``htk=True``, ``2595 log10(1 + f / 700)``). :func:`stft_magnitude` and
:func:`log_mel_spectrogram` follow ``librosa.stft`` / ``librosa.feature.melspectrogram`` + ``librosa.power_to_db``
(periodic Hann window centred in ``n_fft``, frames centred on ``t * hop_length`` with zero padding), with
MMAction2's sizes as defaults (16 kHz, ``n_fft=512``, hop 256, 80 mel bins, 125 - 7600 Hz).

MMAction2's audio features. ``tools/data/build_audio_features.py`` (MMAction2 1.x) writes one ``.npy`` per file, a
float32 array ``(T, 80)``; the audio recipes (``audioonly_r50_...-audio-feature``, ``tsn_r18_...-audio-feature``)
read those. For each file it:

1. loads the audio with ``librosa.load(path, sr=16000)`` (mono, librosa's resampler);
2. scales it to an RMS of 0.1 (``rms = max(1e-4, sqrt(mean(x**2)))``, ``x *= 0.1 / rms``);
3. takes an STFT with ``lws.lws(512, 256, mode="speech").stft``: 512-sample frames (32 ms), hop 256 (16 ms, 62.5
   rows per second), a square-root Hann window (``sin(pi (n + 0.5) / 512)``, normalised for perfect
   reconstruction), no centring: 256 zeros before the signal, zeros after it up to a whole hop, so a signal of N
   samples gives ``ceil(N / 256) + 1`` frames;
4. applies 80 Slaney-normalised Slaney-scale mel filters over 125 - 7600 Hz to the *magnitude* (not the power);
5. converts to dB, ``20 log10(max(1e-5, mel)) - 20`` (``ref_level_db=20``), and normalises,
   ``clip((dB + 100) / 100, 0, 1)`` (``min_level_db=-100``); values lie in ``[0, 1]``;
6. saves the transpose, ``(T, 80)``, as float32.

:func:`mmaction2_audio_features` reproduces steps 2 - 6 for a 16 kHz waveform, to float32 round-off;
:func:`extract_mmaction2_audio_features` does the whole thing for a file, with :func:`read_audio` in place of
``librosa.load`` (the resamplers differ, so features of non-16 kHz files differ slightly). Facts about the script:
its class defaults (``fft_size=1280``, ``hop_size=320``) are overridden by its ``__main__`` (512 / 256); the model
zoo's metafile says ``n_fft: 1024``, which the script never uses; and it calls ``librosa.filters.mel`` with
positional arguments, which librosa >= 0.10 rejects (every file then fails inside its ``except BaseException``).

Clip selection (MMAction2's ``LoadAudioFeature`` + ``SampleFrames`` + ``AudioFeatureSelector``): an annotation line
gives the feature file, the *video's* frame count and the label. Frame indices are sampled as for the video
(``SampleFrames(clip_len=64, frame_interval=1, num_clips=1)``; 10 clips at test time) and each clip is mapped to
feature rows by proportion: ``start = round((first + 1) / total_frames * T)``, ``end = round((last + 1) /
total_frames * T)`` (Python's round, half to even; clamped to ``[0, T]``), where ``first`` / ``last`` are the
clip's first and last sampled frame indices. Rows ``[start, end)`` are cut to ``fixed_length`` rows (128 by
default; the recipes keep it) or zero-padded at the end to it. :func:`select_audio_clips` returns ``(num_clips,
fixed_length, F)``; ``[:, None]`` adds the channel axis of ``FormatAudioShape(input_format='NCTF')``, giving the
``(V, 1, T, F)`` views of one sample. ``LoadAudioFeature`` substitutes zeros ``(640, 80)`` for a missing file
(:func:`load_audio_features` with ``missing="zeros"``; the default raises).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch

from vidlab.data.decode import VideoDecodeError, check_media_file
from vidlab.errors import InputError, MissingFileError

__all__ = [
    "MMACTION2_AUDIO",
    "AudioDecodeError",
    "AudioFeatureSelector",
    "extract_mmaction2_audio_features",
    "hz_to_mel",
    "load_audio_features",
    "log_mel_spectrogram",
    "mel_filterbank",
    "mel_to_hz",
    "mmaction2_audio_features",
    "read_audio",
    "select_audio_clips",
    "stft_magnitude",
]

#: the settings of MMAction2's ``tools/data/build_audio_features.py`` (its ``__main__``)
MMACTION2_AUDIO = {
    "sample_rate": 16000,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": 80,
    "fmin": 125.0,
    "fmax": 7600.0,
    "desired_rms": 0.1,
    "rms_eps": 1e-4,
    "ref_level_db": 20.0,
    "min_level_db": -100.0,
}
#: rows x mel bins of the zeros ``LoadAudioFeature`` uses for a missing feature file
MISSING_FEATURES_SHAPE = (640, 80)


class AudioDecodeError(VideoDecodeError):
    """A file's audio cannot be read: no audio stream, or undecodable audio. ``path`` names the file."""


# --------------------------------------------------------------------------------------------------
# waveforms


def _decode_resampled(container, stream, sample_rate: int) -> list[np.ndarray]:
    """The stream's samples as planar float32 chunks ``(channels, n)`` at ``sample_rate``."""
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks = []
    for frame in container.decode(stream):
        chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
    chunks.extend(out.to_ndarray() for out in resampler.resample(None))  # flush the resampler's delay line
    return chunks


def read_audio(path: str | os.PathLike, sample_rate: int = 16000, mono: bool = True) -> np.ndarray:
    """The first audio stream of a video or audio file as float32 samples in ``[-1, 1]`` at ``sample_rate``.

    Args:
        path: any file FFmpeg reads (mp4, mkv, webm, avi, wav, m4a, ...).
        sample_rate: output rate in Hz; PyAV's ``AudioResampler`` converts (no-op at the stream's own rate).
        mono: average the channels.

    Returns:
        ``(num_samples,)`` if ``mono``, else ``(channels, num_samples)``.

    Raises:
        AudioDecodeError: the file is missing, empty or not a media file, has no audio stream, or its audio cannot
            be decoded (a :class:`~vidlab.data.decode.VideoDecodeError`, naming the file).
        ValueError: ``sample_rate`` is not a positive integer.
    """
    path = os.fspath(path)
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise InputError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    check_media_file(path, AudioDecodeError, "a media file")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise AudioDecodeError(path, f"cannot open as a media file ({err})") from err
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(path, "contains no audio stream (a video without sound?)")
        try:
            chunks = _decode_resampled(container, container.streams.audio[0], sample_rate)
        except av.error.FFmpegError as err:
            raise AudioDecodeError(path, f"audio decoding failed ({err})") from err
    if not chunks or sum(c.shape[1] for c in chunks) == 0:
        raise AudioDecodeError(path, "audio stream holds no samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)  # (channels, n)
    return samples.mean(axis=0, dtype=np.float32) if mono else samples


# --------------------------------------------------------------------------------------------------
# mel scale and filters

_SLANEY_F_SP = 200.0 / 3  # Hz per mel below 1 kHz
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = math.log(6.4) / 27.0  # 27 mels per factor 6.4 above 1 kHz


def hz_to_mel(freqs, htk: bool = False) -> torch.Tensor:
    """Frequencies in Hz -> mels (float64): the Slaney scale (linear to 1 kHz, logarithmic above), or HTK's."""
    f = torch.as_tensor(freqs, dtype=torch.float64)
    if htk:
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    log_part = _SLANEY_MIN_LOG_MEL + torch.log(f.clamp_min(_SLANEY_MIN_LOG_HZ) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return torch.where(f >= _SLANEY_MIN_LOG_HZ, log_part, f / _SLANEY_F_SP)


def mel_to_hz(mels, htk: bool = False) -> torch.Tensor:
    """Mels -> frequencies in Hz (float64); the inverse of :func:`hz_to_mel`."""
    m = torch.as_tensor(mels, dtype=torch.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    log_part = _SLANEY_MIN_LOG_HZ * torch.exp(_SLANEY_LOGSTEP * (m - _SLANEY_MIN_LOG_MEL))
    return torch.where(m >= _SLANEY_MIN_LOG_MEL, log_part, _SLANEY_F_SP * m)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Triangular mel filters over the ``n_fft // 2 + 1`` bins of a real FFT (librosa's ``filters.mel``).

    ``n_mels + 2`` points equally spaced in mels between ``fmin`` and ``fmax`` give each filter its left edge,
    peak and right edge; the weights are computed in float64 and returned in ``dtype``.

    Args:
        sample_rate: sampling rate in Hz.
        n_fft: FFT size.
        n_mels: number of filters.
        fmin: lowest frequency (Hz).
        fmax: highest frequency (Hz); ``sample_rate / 2`` if None.
        htk: HTK mel scale instead of Slaney's.
        norm: ``"slaney"``: each triangle divided by its width in Hz / 2 (unit area); None: peaks of 1.

    Returns:
        ``(n_mels, n_fft // 2 + 1)``; ``mel = weights @ spectrum``.
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    if not 0 <= fmin < fmax:
        raise InputError(f"need 0 <= fmin < fmax, got fmin={fmin}, fmax={fmax}")
    if norm not in ("slaney", None):
        raise InputError(f"norm must be 'slaney' or None, got {norm!r}")
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (sample_rate / n_fft)  # bin centre frequencies
    lo, hi = hz_to_mel(fmin, htk).item(), hz_to_mel(fmax, htk).item()
    edges = mel_to_hz(torch.linspace(lo, hi, n_mels + 2, dtype=torch.float64), htk)  # filter edges and peaks (Hz)
    widths = edges.diff()  # (n_mels + 1,)
    offsets = edges[:, None] - bins[None, :]  # (n_mels + 2, bins)
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = torch.minimum(rising, falling).clamp_min(0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.to(dtype)


# --------------------------------------------------------------------------------------------------
# spectrograms


def _as_wave(wave) -> torch.Tensor:
    x = torch.as_tensor(wave)
    if not x.is_floating_point():
        raise TypeError(f"expected a float waveform, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] == 0:
        raise InputError(f"expected a waveform (..., num_samples) with samples, got shape {tuple(x.shape)}")
    return x


def stft_magnitude(
    wave,
    n_fft: int = 512,
    hop_length: int | None = None,
    win_length: int | None = None,
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 1.0,
) -> torch.Tensor:
    """``|STFT| ** power`` of ``(..., num_samples)`` waveforms, as ``librosa.stft`` computes it.

    Args:
        wave: float waveform(s), numpy or torch.
        n_fft: FFT size.
        hop_length: samples between frames; ``win_length // 4`` if None.
        win_length: length of the periodic Hann window, zero-padded on both sides to ``n_fft``; ``n_fft`` if None.
        center: pad ``n_fft // 2`` samples on both sides so frame ``t`` is centred on sample ``t * hop_length``.
        pad_mode: padding for ``center`` (``"constant"``: zeros, librosa's default; ``"reflect"``).
        power: 1 for the magnitude, 2 for the power.

    Returns:
        ``(..., T, n_fft // 2 + 1)`` in the input's float dtype.
    """
    x = _as_wave(wave)
    win_length = n_fft if win_length is None else win_length
    hop_length = win_length // 4 if hop_length is None else hop_length
    window = torch.hann_window(win_length, periodic=True, dtype=x.dtype, device=x.device)
    lead = x.shape[:-1]
    spec = torch.stft(
        x.reshape(-1, x.shape[-1]),
        n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        return_complex=True,
    )  # (N, n_fft // 2 + 1, T)
    mag = spec.abs()
    if power != 1.0:
        mag = mag**power
    return mag.reshape(*lead, *mag.shape[1:]).transpose(-1, -2)


def _to_db(power: torch.Tensor, amin: float, top_db: float | None) -> torch.Tensor:
    """``librosa.power_to_db(power, ref=1.0, amin, top_db)`` over the last two axes of each spectrogram."""
    db = 10.0 * torch.log10(power.clamp_min(amin))
    if top_db is not None:
        db = torch.maximum(db, db.amax(dim=(-2, -1), keepdim=True) - top_db)
    return db


def log_mel_spectrogram(
    wave,
    sample_rate: int = 16000,
    n_fft: int = 512,
    hop_length: int | None = 256,
    win_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 125.0,
    fmax: float | None = 7600.0,
    htk: bool = False,
    norm: str | None = "slaney",
    power: float = 2.0,
    center: bool = True,
    pad_mode: str = "constant",
    log: str | None = "db",
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> torch.Tensor:
    """Mel spectrogram of ``(..., num_samples)`` waveforms, in dB by default:
    ``librosa.power_to_db(librosa.feature.melspectrogram(...), top_db=top_db)`` with the same arguments.

    The defaults are MMAction2's feature sizes (16 kHz, 512-point FFT, hop 256, 80 mel bins over 125 - 7600 Hz)
    with librosa's STFT and dB conversion; :func:`mmaction2_audio_features` gives MMAction2's exact features.

    Args:
        wave: float waveform(s) at ``sample_rate``.
        sample_rate, n_fft, hop_length, win_length, center, pad_mode: see :func:`stft_magnitude`.
        n_mels, fmin, fmax, htk, norm: see :func:`mel_filterbank`.
        power: exponent of the STFT magnitude the filters are applied to (2: power, 1: magnitude).
        log: ``"db"``: ``10 log10(max(amin, mel))``, floored at ``top_db`` below each spectrogram's maximum (no
            floor if ``top_db`` is None); ``"ln"``: ``log(max(amin, mel))``; None: the linear mel spectrogram.
        amin: smallest value taken before the logarithm.
        top_db: dynamic range kept by ``log="db"``.

    Returns:
        ``(..., T, n_mels)`` in the input's float dtype.
    """
    x = _as_wave(wave)
    spec = stft_magnitude(x, n_fft, hop_length, win_length, center=center, pad_mode=pad_mode, power=power)
    filters = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, htk=htk, norm=norm, dtype=spec.dtype)
    mel = spec @ filters.to(spec.device).T  # (..., T, n_mels)
    if log == "db":
        return _to_db(mel, amin, top_db)
    if log == "ln":
        return torch.log(mel.clamp_min(amin))
    if log is None:
        return mel
    raise InputError(f"log must be 'db', 'ln' or None, got {log!r}")


# --------------------------------------------------------------------------------------------------
# MMAction2's feature files


def _lws_window(n_fft: int, hop_length: int) -> torch.Tensor:
    """lws's default analysis window for ``lws.lws(n_fft, hop_length)``: the square root of a half-sample-offset
    Hann window, normalised so that overlapping squared windows sum to one (float64)."""
    root_hann = torch.sin(math.pi * (torch.arange(n_fft, dtype=torch.float64) + 0.5) / n_fft)
    overlaps = math.ceil(n_fft / hop_length)
    squared = torch.zeros(overlaps * hop_length, dtype=torch.float64)
    squared[:n_fft] = root_hann**2
    overlap_sum = squared.view(overlaps, hop_length).sum(0).repeat(overlaps)[:n_fft]
    return torch.sqrt(root_hann * root_hann / overlap_sum)


def _lws_stft_magnitude(x: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """``abs(lws.lws(n_fft, hop_length).stft(x))`` (its ``perfectrec`` padding) of a 1-D float64 signal: (T, bins)."""
    lead = n_fft - hop_length if n_fft % hop_length == 0 else n_fft - n_fft % hop_length
    tail = (-x.numel()) % hop_length
    padded = torch.cat([x.new_zeros(lead), x, x.new_zeros(tail)])
    num_frames = padded.numel() // hop_length
    padded = torch.cat([padded, x.new_zeros((num_frames - 1) * hop_length + n_fft - padded.numel())])
    frames = padded.unfold(0, n_fft, hop_length) * _lws_window(n_fft, hop_length)  # (T, n_fft)
    return torch.fft.rfft(frames, n=n_fft).abs()


def mmaction2_audio_features(wave, sample_rate: int = 16000) -> np.ndarray:
    """The features MMAction2's ``build_audio_features.py`` writes for a waveform it loaded at 16 kHz (steps 2 - 6
    of the module docstring): RMS to 0.1, lws STFT (512 / 256), 80 Slaney mel filters (125 - 7600 Hz) on the
    magnitude, ``20 log10`` - 20 dB, scaled from ``[-100, 0]`` dB to ``[0, 1]``.

    Args:
        wave: mono samples at 16 kHz, ``(num_samples,)`` (as ``librosa.load(path, sr=16000)`` or
            ``read_audio(path, 16000)`` give).
        sample_rate: must be 16000, the script's rate (its mel filters assume it).

    Returns:
        float32 ``(ceil(num_samples / 256) + 1, 80)`` in ``[0, 1]``, what the script saves to ``.npy``.

    Raises:
        ValueError: for another sample rate or a waveform that is not 1-D.
    """
    cfg = MMACTION2_AUDIO
    if sample_rate != cfg["sample_rate"]:
        raise InputError(
            f"MMAction2's audio features are computed at {cfg['sample_rate']} Hz, got sample_rate={sample_rate}: "
            f"resample first (read_audio(path, {cfg['sample_rate']}))"
        )
    x = _as_wave(wave).detach().cpu().to(torch.float32)
    if x.dim() != 1:
        raise InputError(f"expected a mono waveform (num_samples,), got shape {tuple(x.shape)}")
    rms = torch.sqrt(torch.mean(x * x)).clamp_min(cfg["rms_eps"])  # float32 as the script's numpy
    x = (x * (cfg["desired_rms"] / rms)).double()
    mag = _lws_stft_magnitude(x, cfg["n_fft"], cfg["hop_length"])  # (T, 257)
    filters = mel_filterbank(sample_rate, cfg["n_fft"], cfg["n_mels"], cfg["fmin"], cfg["fmax"], dtype=torch.float32)
    mel = mag @ filters.double().T  # (T, 80); librosa's float32 filters, float64 product
    min_level = math.exp(cfg["min_level_db"] / 20 * math.log(10))
    db = 20 * torch.log10(mel.clamp_min(min_level)) - cfg["ref_level_db"]
    return ((db - cfg["min_level_db"]) / -cfg["min_level_db"]).clamp(0, 1).to(torch.float32).numpy()


def extract_mmaction2_audio_features(path: str | os.PathLike) -> np.ndarray:
    """MMAction2-style features ``(T, 80)`` of a media file's sound: ``read_audio(path, 16000)`` then
    :func:`mmaction2_audio_features` (save with ``np.save(out, features)`` to get the script's ``.npy``)."""
    return mmaction2_audio_features(read_audio(path, MMACTION2_AUDIO["sample_rate"]))


def load_audio_features(path: str | os.PathLike, missing: str = "error") -> np.ndarray:
    """An audio-feature file (``.npy``, ``(T, F)``) as float32, as MMAction2's ``LoadAudioFeature`` reads it.

    Args:
        path: the ``.npy`` file.
        missing: ``"error"``: a missing file raises; ``"zeros"``: MMAction2's stand-in for videos without sound,
            zeros ``(640, 80)``.

    Raises:
        FileNotFoundError: the file does not exist (``missing="error"``).
        ValueError: the file is not a 2-D numeric array, or ``missing`` is unknown.
    """
    if missing not in ("error", "zeros"):
        raise InputError(f"missing must be 'error' or 'zeros', got {missing!r}")
    path = Path(path)
    if not path.is_file():
        if missing == "zeros":
            return np.zeros(MISSING_FEATURES_SHAPE, dtype=np.float32)
        raise MissingFileError(f"audio feature file not found: {path} (missing='zeros' substitutes silence)")
    try:
        features = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputError(f"{path}: not a .npy audio-feature array ({err})") from err
    if features.ndim != 2 or not np.issubdtype(features.dtype, np.number):
        raise InputError(f"{path}: expected a numeric (T, F) feature array, got {features.dtype} {features.shape}")
    return features.astype(np.float32, copy=False)


def _row_range(first: int, last: int, total_frames: int, length: int) -> tuple[int, int]:
    """Feature rows ``[start, end)`` of a clip whose sampled frames run from ``first`` to ``last`` (MMAction2's
    proportional mapping, frame ``i`` ending at row ``(i + 1) / total_frames * length``)."""
    start = max(0, round((int(first) + 1) / total_frames * length))  # true division, round half to even
    end = min(length, round((int(last) + 1) / total_frames * length))
    return start, end


def select_audio_clips(
    features: np.ndarray,
    frame_inds: Sequence[int] | np.ndarray,
    total_frames: int,
    num_clips: int = 1,
    fixed_length: int = 128,
) -> np.ndarray:
    """The feature rows of sampled clips, cut or zero-padded to ``fixed_length`` (MMAction2's
    ``AudioFeatureSelector``; see the module docstring).

    Args:
        features: ``(T, F)`` features of the whole file.
        frame_inds: the video frame indices a sampler chose, ``num_clips`` clips one after the other (e.g.
            :class:`~vidlab.data.sampling.SampleFrames`' output) or ``(num_clips, clip_len)``.
        total_frames: frame count of the video (the annotation's), which the indices refer to.
        num_clips: clips in ``frame_inds``.
        fixed_length: rows per clip.

    Returns:
        ``(num_clips, fixed_length, F)`` in the features' dtype.

    Raises:
        ValueError: for features that are not 2-D, a non-positive ``total_frames`` or ``fixed_length``, or
            indices that do not split into ``num_clips`` non-empty clips.
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise InputError(f"features must be (T, F), got shape {features.shape}")
    if total_frames <= 0 or fixed_length <= 0:
        raise InputError(f"total_frames and fixed_length must be positive, got {total_frames}, {fixed_length}")
    inds = np.asarray(frame_inds, dtype=np.int64).reshape(-1)
    if num_clips <= 0 or inds.size == 0 or inds.size % num_clips:
        raise InputError(f"{inds.size} frame indices do not split into num_clips={num_clips} clips")
    length, total_frames = features.shape[0], int(total_frames)
    out = np.zeros((num_clips, fixed_length, features.shape[1]), dtype=features.dtype)
    for k, clip in enumerate(inds.reshape(num_clips, -1)):
        start, end = _row_range(clip[0], clip[-1], total_frames, length)
        rows = features[start:end][:fixed_length]
        out[k, : len(rows)] = rows
    return out


class AudioFeatureSelector:
    """:func:`select_audio_clips` with a fixed ``fixed_length`` (MMAction2's ``AudioFeatureSelector``, 128 rows)."""

    def __init__(self, fixed_length: int = 128) -> None:
        if fixed_length <= 0:
            raise InputError(f"fixed_length must be positive, got {fixed_length}")
        self.fixed_length = fixed_length

    def __call__(
        self, features: np.ndarray, frame_inds: Sequence[int] | np.ndarray, total_frames: int, num_clips: int = 1
    ) -> np.ndarray:
        """``(num_clips, fixed_length, F)`` rows of ``features`` for the sampled frame indices."""
        return select_audio_clips(features, frame_inds, total_frames, num_clips, self.fixed_length)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(fixed_length={self.fixed_length})"
