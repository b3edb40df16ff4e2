"""Sliding-window prediction over a long video: ``vidlab predict LONG.mp4 --checkpoint CKPT --window 2 --stride 1``.

A recognition checkpoint scores every window of ``window`` seconds, one starting every ``stride`` seconds, and the
results form a timeline (JSON) and, optionally, a copy of the video with each frame's label drawn on it.

* **Time.** Frame ``i`` of a video with average frame rate ``fps`` has the timestamp ``i / fps`` (exact for
  constant-rate files; a variable-rate file is treated as if its frames were evenly spaced), and the video lasts
  ``duration = num_frames / fps`` seconds.
* **Windows** (:func:`plan_windows`). Window ``k`` covers ``[k * stride, k * stride + window)`` and holds the frames
  whose timestamps fall inside; there are ``floor((duration - window) / stride) + 1`` of them, so none reaches past
  the end (the tail after the last full window, shorter than ``stride``, is covered by the label rule below). A video
  shorter than one window is one window over the whole video (and a warning says so).
* **Sampling.** Each window is treated as a trimmed video: the checkpoint's test sampler (``clip_len``,
  ``frame_interval``, ``num_clips`` of its clip spec) picks frames inside it exactly as it would from a whole video
  of that many frames, as ``data.windows`` does in training and testing. A TSN-style ``clip_len: 1, num_clips: 8``
  takes the centres of 8 equal segments of the window; a 3D ``clip_len: 16, frame_interval: 4`` takes one clip at
  the spec's interval, centred in the window (wrapping round inside the window, as for a video shorter than the
  clip, when the window is shorter than the clip's span).
* **Decoding** (:func:`iter_windows`). One sequential pass through the file with PyAV, no seeking: each decoded frame
  that some window samples is converted (to RGB, at the decoder size of the clip spec) and kept until the last
  window that uses it has been handed out, so memory holds the sampled frames of about ``window / stride`` windows
  whatever the video's length. Frames are exactly those :class:`~vidlab.data.decode.VideoReader` reads.
* **Model.** The windows' frames go through the checkpoint's test pipeline (the one ``vidlab predict`` and
  ``vidlab test`` build), then through the model ``batch_size`` windows at a time; scores are multi-view softmax
  probabilities (``forward_views(average_clips="prob")``), as ``vidlab predict`` without a window gives.
* **Label rule.** The label of the frame at time ``t`` (drawn by ``--render``, and the ``segments`` of the timeline) is
  the top-1 class of the window whose centre is closest to ``t``; at equal distance, the later window. Window ``k``
  thus labels ``[c_k - stride / 2, c_k + stride / 2)`` around its centre ``c_k``, the first one from 0 and the last
  one up to the end.
* **Rendering** (:func:`render_labels`) is a second sequential pass: frames are decoded, labelled and encoded one at a
  time (H.264 via libx264, else MPEG-4 part 2), with the input's frame count and frame rate.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from av.video.reformatter import Interpolation, VideoReformatter

from vidlab.data.decode import VideoDecodeError, _output_size, check_media_file
from vidlab.errors import InputError

__all__ = [
    "StreamStats",
    "VideoInfo",
    "Window",
    "iter_windows",
    "label_index",
    "merge_segments",
    "parse_seconds",
    "plan_windows",
    "predict_long_video",
    "probe_video",
    "render_labels",
    "timeline_json",
    "window_line",
]

logger = logging.getLogger(__name__)

_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "m": 60.0, "min": 60.0, "h": 3600.0}
_SECONDS = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(ms|s|min|m|h)?\s*$", re.IGNORECASE)
_EPS = 1e-6  # seconds x fps: timestamps closer than this to a window edge count as on it (float rounding)


def parse_seconds(value: str | float, name: str = "duration") -> float:
    """A positive duration in seconds from ``2``, ``2.5``, ``2s``, ``500ms``, ``1.5m`` / ``1.5min`` or ``1h``.

    Raises:
        InputError: not a number with one of those units, or not positive; the message names ``name``.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _SECONDS.match(str(value))
        if match is None:
            raise InputError(f"{name}: {value!r} is not a duration; give seconds such as 2, 2.5, 2s or 500ms")
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "").lower()]
    if not (seconds > 0 and math.isfinite(seconds)):
        raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


@dataclass(eq=False)
class Window:
    """One window of a video.

    Attributes:
        index: Position in the video's list of windows.
        start: Start time in seconds (inclusive).
        end: End time in seconds (exclusive).
        first: First frame inside the window.
        last: Last frame inside the window (inclusive).
        frame_inds: The frames the model sees, in the sampler's order (clip after clip), absolute indices.
    """

    index: int
    start: float
    end: float
    first: int
    last: int
    frame_inds: np.ndarray = field(repr=False)

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2


def plan_windows(
    num_frames: int,
    fps: float,
    window: float,
    stride: float,
    sampler: Callable | None = None,
) -> list[Window]:
    """The windows of a video of ``num_frames`` frames at ``fps`` (see the module docstring for the rules).

    Args:
        window: Window length in seconds.
        stride: Seconds between window starts.
        sampler: A test-mode frame sampler (``sampler(total_frames, rng, fps=fps) -> indices``, every sampler of
            :mod:`vidlab.data.sampling`), applied to each window's frames; None: every frame of the window.

    Returns:
        Windows in time order; one over the whole video when it is shorter than ``window``.
    """
    for name, value in (("window", window), ("stride", stride)):
        if not (value > 0 and math.isfinite(value)):
            raise InputError(f"{name} must be a positive number of seconds, got {value!r}")
    if num_frames < 1 or not (fps and fps > 0):
        raise InputError(f"a video needs frames and a frame rate to cut windows, got {num_frames} frames at {fps} fps")
    duration = num_frames / fps
    if duration + _EPS / fps < window:
        spans = [(0.0, duration)]
    else:
        count = math.floor((duration - window) / stride + _EPS) + 1
        spans = [(k * stride, k * stride + window) for k in range(count)]
    rng = np.random.default_rng(0)  # test-mode samplers draw nothing; a train-mode one would be reproducible
    windows = []
    for k, (start, end) in enumerate(spans):
        first = min(math.ceil(start * fps - _EPS), num_frames - 1)
        last = max(first, min(math.ceil(end * fps - _EPS) - 1, num_frames - 1))
        inds = np.arange(first, last + 1, dtype=np.int64)
        if sampler is not None:
            inds = np.asarray(sampler(last - first + 1, rng, fps=fps), dtype=np.int64) + first
        windows.append(Window(k, float(start), float(end), first, last, inds))
    return windows


@dataclass(frozen=True)
class VideoInfo:
    """Frame count, average frame rate and the size frames are returned at (after ``short_side`` resizing)."""

    num_frames: int
    fps: float
    width: int
    height: int


def probe_video(path: str | Path, short_side: int | None = None) -> VideoInfo:
    """What :class:`~vidlab.data.decode.VideoReader` reports of ``path`` (the same frame count, rate and size),
    counted by demuxing the packets once without keeping a frame table, so memory stays flat for hours of video.

    Raises:
        VideoDecodeError: The file is missing, cannot be opened, has no video stream or frames, or a packet is cut.
    """
    path = str(path)
    check_media_file(path)
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        count, seen_key = 0, False
        try:
            for pkt in container.demux(stream):
                if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
                    continue  # the empty packet PyAV yields at the end of the file
                if pkt.is_corrupt:
                    raise VideoDecodeError(path, "a packet is incomplete; file truncated or corrupt")
                seen_key = seen_key or bool(pkt.is_keyframe)
                # as VideoReader counts: frames before the first keyframe and discarded packets never come out
                count += bool(pkt.size and not pkt.is_discard and seen_key)
        except av.error.FFmpegError as err:
            raise VideoDecodeError(path, f"cannot read packet {count} ({err}); file truncated or corrupt") from err
        rates = (stream.average_rate, stream.guessed_rate, stream.base_rate)
        fps = next((float(r) for r in rates if r is not None and r > 0), 0.0)
    if count == 0:
        raise VideoDecodeError(path, "video stream holds no frames")
    if width <= 0 or height <= 0:
        raise VideoDecodeError(path, "video stream has no frame size")
    return VideoInfo(count, fps, *_output_size(width, height, short_side))


def _open(path: str):
    """``av.open`` for reading, with a video stream; failures as :class:`VideoDecodeError`."""
    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoDecodeError(path, f"cannot open as a video ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(path, "contains no video stream")
    return container


@dataclass
class StreamStats:
    """What one :func:`iter_windows` pass did.

    Attributes:
        decoded: Frames the decoder returned (each frame of the file at most once).
        converted: Frames converted to RGB (those some window samples).
        peak_buffered: Most converted frames held at one time.
    """

    decoded: int = 0
    converted: int = 0
    peak_buffered: int = 0


def iter_windows(
    path: str | Path,
    windows: Sequence[Window],
    *,
    size: tuple[int, int] | None = None,
    stats: StreamStats | None = None,
    progress: bool = False,
) -> Iterator[tuple[Window, np.ndarray]]:
    """``(window, frames)`` for each of ``windows``, in order, from one sequential decoding pass over ``path``.

    ``frames`` is uint8 ``(len(window.frame_inds), H, W, 3)`` RGB, row ``j`` being frame ``window.frame_inds[j]``;
    frame ``i`` is the ``i``-th frame the decoder outputs. Only frames some window samples are converted and kept,
    each until the last window using it has been yielded; decoding stops after the last window's last frame.

    Args:
        size: ``(width, height)`` of the returned frames (default: as stored), as ``VideoReader(short_side=...)``
            gives them.
        stats: Filled in while iterating (frames decoded, converted, most held at once).
        progress: A progress bar over the video's frames on stderr.

    Raises:
        VideoDecodeError: The file cannot be opened or decoded, or ends before a window's frames.
    """
    path = str(path)
    stats = stats if stats is not None else StreamStats()
    pending = list(windows)
    uses = Counter(int(i) for w in pending for i in np.unique(w.frame_inds))
    ends = [int(w.frame_inds.max()) for w in pending]
    check_media_file(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        yield from _stream_windows(container, stream, path, pending, ends, uses, size, stats, progress)


def _stream_windows(container, stream, path, pending, ends, uses, size, stats, progress) -> Iterator:
    """The decoding loop of :func:`iter_windows`."""
    buffer: dict[int, np.ndarray] = {}
    reformatter = VideoReformatter()
    head = 0
    with _progress_bar(progress, stream.frames or None, "windows") as bar:
        stream.codec_context.thread_count = 1  # as VideoReader: the cores are the model's
        frames = _decoded(container, stream, path)
        i = -1
        while head < len(pending):
            frame = next(frames, None)
            if frame is None:
                raise VideoDecodeError(
                    path, f"the decoder returned {stats.decoded} frames, but window {pending[head].index} needs frame "
                    f"{ends[head]}; file truncated or corrupt"
                )  # fmt: skip
            i += 1
            stats.decoded += 1
            bar.update(1)
            if i in uses:
                width, height = size or (frame.width, frame.height)
                rgb = reformatter.reformat(
                    frame, width=width, height=height, format="rgb24", interpolation=Interpolation.BILINEAR, threads=1
                )
                buffer[i] = rgb.to_ndarray()
                stats.converted += 1
                stats.peak_buffered = max(stats.peak_buffered, len(buffer))
            while head < len(pending) and ends[head] <= i:
                w = pending[head]
                yield w, np.stack([buffer[int(t)] for t in w.frame_inds])
                for t in np.unique(w.frame_inds).tolist():
                    uses[t] -= 1
                    if uses[t] == 0:
                        del uses[t], buffer[t]
                head += 1


def _decoded(container, stream, path: str) -> Iterator:
    """The decoded frames of ``stream`` in output order; FFmpeg errors as :class:`VideoDecodeError`."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets, None)
            if packet is None:
                return
            out = packet.decode()
        except av.error.FFmpegError as err:
            raise VideoDecodeError(path, f"decoding failed ({err})") from err
        yield from out


def _progress_bar(enabled: bool, total: int | None, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def label_index(times: np.ndarray | float, centres: Sequence[float]) -> np.ndarray:
    """Index of the window whose centre is closest to each time (at equal distance: the later window)."""
    c = np.asarray(centres, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    j = np.clip(np.searchsorted(c, t, side="left"), 1, max(len(c) - 1, 1))
    if len(c) == 1:
        return np.zeros(t.shape, dtype=np.int64)
    later = (c[j] - t) <= (t - c[j - 1])
    return np.where(later, j, j - 1).astype(np.int64)


def merge_segments(windows: Sequence[Window], top1: Sequence[tuple[str, float]], duration: float) -> list[dict]:
    """The time ranges where the label rule gives one class: consecutive windows with the same top-1 merged.

    Window ``k`` labels the times closer to its centre than to any other (the first from 0, the last up to
    ``duration``); a segment is ``{start, end, label, windows: [first, last], mean_prob}`` (``mean_prob``: the mean
    top-1 probability of its windows).
    """
    c = [w.centre for w in windows]
    cuts = [0.0] + [(a + b) / 2 for a, b in zip(c, c[1:])] + [float(duration)]  # window k labels [cuts[k], cuts[k+1])
    segments: list[dict] = []
    k = 0
    while k < len(windows):
        j = k
        while j + 1 < len(windows) and top1[j + 1][0] == top1[k][0]:
            j += 1
        segments.append(
            {
                "start": round(cuts[k], 6),
                "end": round(cuts[j + 1], 6),
                "label": top1[k][0],
                "windows": [windows[k].index, windows[j].index],
                "mean_prob": round(float(np.mean([p for _, p in top1[k : j + 1]])), 6),
            }
        )
        k = j + 1
    return segments


def timeline_json(doc: dict) -> str:
    """``doc`` as JSON text with one line per window and per segment (a long video's file stays readable)."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n".join(f"  {json.dumps(v)}" for v in value)
            lines.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def window_line(entry: dict) -> str:
    """One window of the timeline as a line: ``start-end  name prob  name prob ...`` (seconds)."""
    labels = "  ".join(f"{name} {prob:.3f}" for name, prob in entry["topk"])
    return f"{entry['start']:.2f}-{entry['end']:.2f}  {labels}"


def _check_task(cfg, checkpoint) -> None:
    if cfg.task == "detection":
        raise InputError(
            f"sliding windows (--window) are not supported for detectors: {checkpoint} is an action detector "
            "(task: detection); predict its keyframes with --boxes PROPOSALS or --gt-boxes GT.csv, without --window"
        )
    if cfg.task != "recognition":
        raise InputError(
            f"sliding windows (--window) take recognition checkpoints; {checkpoint} is a {cfg.task} checkpoint"
        )


def _check_dataset(cfg, dataset, checkpoint) -> None:
    from vidlab.data.datasets import VideoDataset

    if not isinstance(dataset, VideoDataset) or dataset.modality != "RGB" or cfg.data.format == "features":
        raise InputError(
            f"sliding windows (--window) read RGB video frames; {checkpoint} takes data.format={cfg.data.format}, "
            f"data.modality={cfg.data.modality}"
        )


def _views(dataset, frames: np.ndarray) -> torch.Tensor:
    """One window's sampled frames through the test pipeline, as views ``(V, T, H, W, C)`` uint8 (what
    :class:`~vidlab.data.datasets.VideoDataset` makes of a video's sampled frames)."""
    sampler = dataset.sampler
    results = {
        "imgs": torch.from_numpy(frames),
        "rng": np.random.default_rng(0),
        "num_clips": sampler.num_clips,
        "clip_len": sampler.clip_len,
        "modality": "RGB",
        "label": 0,
    }
    imgs = dataset.pipeline(results)["imgs"]  # (N, H, W, C), N = num_crops * num_clips * clip_len
    per_view = sampler.clip_len if dataset.input_format == "NCTHW" else dataset.num_segments
    if imgs.shape[0] % per_view:
        raise InputError(
            f"{imgs.shape[0]} frames of a window do not split into views of {per_view} frames "
            f"(input_format={dataset.input_format}, num_segments={dataset.num_segments})"
        )
    return imgs.reshape(-1, per_view, *imgs.shape[1:])


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _scored(model, dataset, stream, data, device, precision: str, batch_size: int, topk: int, names) -> Iterator[dict]:
    """The timeline entry of each ``(window, frames)`` of ``stream``, scored ``batch_size`` windows at a time."""
    from vidlab.engine.evaluate import to_input
    from vidlab.engine.precision import autocast_context

    for batch in _batches(stream, batch_size):
        imgs = torch.stack([_views(dataset, frames) for _, frames in batch])  # (B, V, T, H, W, C)
        x = to_input(imgs, data.mean, data.std, device)  # (B, V, C, T, H, W)
        with autocast_context(precision, device):
            probs = model.forward_views(x, average_clips="prob").float().cpu()
        top = torch.topk(probs, min(topk, probs.shape[1]))
        for (w, _), values, indices in zip(batch, top.values.tolist(), top.indices.tolist()):
            yield {
                "start": round(w.start, 6),
                "end": round(w.end, 6),
                "frames": [w.first, w.last],
                "topk": [[names[i] if i < len(names) else str(i), round(p, 6)] for p, i in zip(values, indices)],
            }


@torch.no_grad()
def _open_video(cfg, video, checkpoint, window: float):
    """The checkpoint's test dataset for ``video`` (its sampler, pipeline and short side) and the video's probe,
    after the checks: a readable file, a recognition checkpoint, a stated frame rate."""
    from vidlab.data.datasets import VideoItem
    from vidlab.engine.builders import build_dataset

    check_media_file(str(video))
    _check_task(cfg, checkpoint)
    dataset = build_dataset(cfg, "test", items=[VideoItem(str(video), [0])])
    _check_dataset(cfg, dataset, checkpoint)
    info = probe_video(video, dataset.short_side)
    if not info.fps or info.fps <= 0:
        raise InputError(f"{video}: the video states no frame rate, so its windows cannot be placed in time")
    if info.num_frames / info.fps < window:
        logger.warning(
            "%s lasts %.2f s, less than one %.2f s window: predicting one window over the whole video",
            video, info.num_frames / info.fps, window,
        )  # fmt: skip
    return dataset, info


def predict_long_video(
    cfg,
    video: str | Path,
    checkpoint: str | Path,
    *,
    window: float,
    stride: float,
    topk: int = 5,
    batch_size: int = 8,
    timeline: str | Path | None = None,
    render: str | Path | None = None,
    progress: bool = False,
    on_window: Callable[[dict], None] | None = None,
) -> dict:
    """Sliding-window top-k of a recognition checkpoint over one video (see the module docstring).

    Args:
        cfg: The run's config (:func:`vidlab.engine.inference.resolve_config`).
        window: Window length in seconds.
        stride: Seconds between window starts.
        topk: Classes listed per window.
        batch_size: Windows per forward pass.
        timeline: JSON file to write the timeline to.
        render: MP4 to write the video to, each frame labelled (:func:`render_labels`).
        progress: Progress bars on stderr.
        on_window: Called with each window's timeline entry as soon as it is scored.

    Returns:
        The timeline: ``video``, ``checkpoint``, ``model``, ``fps``, ``duration``, ``num_frames``, ``window``,
        ``stride``, ``sampler``, ``classes``, ``windows`` (``{start, end, frames: [first, last], topk: [[name, prob],
        ...]}``) and ``segments`` (:func:`merge_segments`).
    """
    from vidlab.engine.distributed import init_distributed
    from vidlab.engine.inference import build_for_inference, class_names, inference_precision

    window, stride = parse_seconds(window, "window"), parse_seconds(stride, "stride")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise InputError(f"batch size must be a positive integer, got {batch_size!r}")
    dataset, info = _open_video(cfg, video, checkpoint, window)
    num_frames, fps, size = info.num_frames, info.fps, (info.width, info.height)
    duration = num_frames / fps
    device = init_distributed(cfg.device).device
    precision = inference_precision(cfg, device)
    model = build_for_inference(cfg, checkpoint, device)
    names = class_names(cfg, checkpoint) or []
    windows = plan_windows(num_frames, fps, window, stride, dataset.sampler)
    stream = iter_windows(video, windows, size=size, progress=progress)
    entries: list[dict] = []
    for entry in _scored(model, dataset, stream, cfg.data, device, precision, batch_size, topk, names):
        entries.append(entry)
        if on_window is not None:
            on_window(entry)
    doc = {
        "video": str(video),
        "checkpoint": str(checkpoint),
        "model": cfg.model.name,
        "fps": fps,
        "duration": round(duration, 6),
        "num_frames": num_frames,
        "window": window,
        "stride": stride,
        "sampler": dict(cfg.data.test_sampler or cfg.data.val_sampler),
        "label_rule": "nearest window centre (ties: the later window)",
        "classes": list(names) or [str(i) for i in range(getattr(model, "num_classes", cfg.model.num_classes))],
        "windows": entries,
        "segments": merge_segments(windows, [e["topk"][0] for e in entries], duration),
    }
    if timeline is not None:
        Path(timeline).parent.mkdir(parents=True, exist_ok=True)
        Path(timeline).write_text(timeline_json(doc))
    if render is not None:
        captions = [f"{e['topk'][0][0]} {e['topk'][0][1]:.2f}" for e in entries]
        render_labels(video, render, [w.centre for w in windows], captions, fps=fps, progress=progress)
    return doc


def _encoder_name() -> str:
    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:  # PyAV built without libx264
        return "mpeg4"


def _font(height: int):
    from PIL import ImageFont  # pillow ships with matplotlib

    try:
        return ImageFont.load_default(size=max(10, height // 20))
    except TypeError:  # pillow < 10.1: the fixed-size bitmap font
        return ImageFont.load_default()


def _label_patch(caption: str, font) -> np.ndarray:
    """``caption`` in white on a black box, uint8 RGB ``(h, w, 3)``, drawn once per caption and pasted on frames."""
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((2, 1), caption, font=font)
    image = Image.new("RGB", (box[2] + 3, box[3] + 3), (0, 0, 0))
    ImageDraw.Draw(image).text((2, 1), caption, fill=(255, 255, 255), font=font)
    return np.asarray(image)


def render_labels(
    video: str | Path,
    out: str | Path,
    centres: Sequence[float],
    captions: Sequence[str],
    *,
    fps: float | None = None,
    progress: bool = False,
) -> Path:
    """Write ``out`` (MP4): ``video`` with, on each frame, the caption of the window whose centre is closest to the
    frame's timestamp ``i / fps`` (:func:`label_index`), white on a black box in the top-left corner.

    One sequential pass, one frame in memory at a time; the output has the input's frames and frame rate (H.264
    via libx264 where PyAV has it, else MPEG-4 part 2; an odd width or height loses its last pixel column or row,
    as 4:2:0 chroma needs even sizes).

    Args:
        centres: Window centres in seconds, ascending.
        captions: The text of each window.
        fps: Frame rate of the timestamps (default: the stream's average rate).
    """
    if len(centres) != len(captions) or not captions:
        raise InputError(f"render_labels needs one caption per window, got {len(captions)} for {len(centres)}")
    check_media_file(str(video))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _open(str(video)) as src, av.open(str(out), "w", format="mp4") as dst:
        in_stream = src.streams.video[0]
        in_stream.codec_context.thread_count = 1
        rate = in_stream.average_rate or Fraction(fps or 25).limit_denominator(1001)
        fps = float(fps or rate)
        codec = _encoder_name()
        enc = dst.add_stream(codec, rate=rate)
        width, height = in_stream.codec_context.width, in_stream.codec_context.height
        enc.width, enc.height, enc.pix_fmt = width - width % 2, height - height % 2, "yuv420p"
        if codec == "libx264":
            enc.options = {"crf": "18", "preset": "veryfast"}
        else:
            enc.options = {"qscale": "3"}
            enc.codec_context.flags |= av.codec.context.Flags.qscale
        enc.codec_context.time_base = Fraction(1) / rate
        font, patch, shown = _font(enc.height), None, None
        to_rgb, to_yuv = VideoReformatter(), VideoReformatter()  # reused: setting one up costs more than a frame
        k = 0
        with _progress_bar(progress, in_stream.frames or None, "render") as bar:
            for i, frame in enumerate(_decoded(src, in_stream, str(video))):
                t = i / fps
                while k + 1 < len(centres) and centres[k + 1] - t <= t - centres[k]:  # label_index's rule
                    k += 1
                if captions[k] != shown:
                    shown, patch = captions[k], _label_patch(captions[k], font)
                rgb = to_rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()[: enc.height, : enc.width]
                h, w = min(patch.shape[0], rgb.shape[0]), min(patch.shape[1], rgb.shape[1])
                rgb[:h, :w] = patch[:h, :w]
                out_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                out_frame = to_yuv.reformat(out_frame, format="yuv420p", threads=1)
                out_frame.pts, out_frame.time_base = i, enc.codec_context.time_base
                dst.mux(enc.encode(out_frame))
                bar.update(1)
        dst.mux(enc.encode(None))
    return out
