"""Frame-index samplers: which frames of a video make up the clips of one sample.

Pure numpy, no I/O. Every sampler is called as ``sampler(total_frames, rng=None, fps=None)``: it maps
``total_frames`` (with, in train mode, a random generator, and the video's frame rate, which only
``SampleFrames(target_fps=...)`` uses) to a flat int64 array of ``num_clips * clip_len`` frame
indices, clip after clip. The decoder reads those frames, and the dataset reshapes them with the
sampler's ``num_clips`` and ``clip_len`` attributes, which always describe the returned array (e.g.
they include the doubling done by ``twice_sample`` in test mode).

The samplers follow the semantics of MMAction2 1.2.0's ``SampleFrames``, ``UniformSample`` and
``DenseSampleFrames``, so ``clip_len x frame_interval x num_clips`` recipes translate 1:1:

* Test mode is deterministic and returns exactly the indices MMAction2 returns (the test suite
  pins them with a fixture produced by MMAction2 itself).
* Train mode draws from the same distributions with the same structure, but its randomness
  comes from the ``rng`` argument (a :class:`numpy.random.Generator`), whereas MMAction2 draws
  from the global ``np.random`` state. Random streams therefore differ; a seeded ``rng`` makes
  vidlab's draws reproducible.
"""

from __future__ import annotations

import numpy as np

from vidlab.errors import InputError

__all__ = ["SampleFrames", "UniformSample", "DenseSampleFrames", "SparseSample"]

_OUT_OF_BOUND_OPTS = ("loop", "repeat_last")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def _check_total_frames(total_frames: int) -> int:
    if int(total_frames) != total_frames or total_frames < 1:
        raise InputError(f"total_frames must be a positive integer, got {total_frames!r} (empty or unreadable video?)")
    return int(total_frames)


def _offsets_to_indices(
    offsets: np.ndarray,
    steps: np.ndarray,
    total_frames: int,
    out_of_bound_opt: str,
    start_index: int,
    jitter: tuple[np.random.Generator, int] | None = None,
) -> np.ndarray:
    """Expands clip start offsets into frame indices and folds out-of-range ones back.

    Args:
        offsets: Start offset of each clip, shape (num_clips,). May be float (2D test mode).
        steps: Offset of each frame within a clip, shape (clip_len,).
        total_frames: Number of frames in the video.
        out_of_bound_opt: "loop" wraps indices modulo ``total_frames``; "repeat_last" replaces
            them with the largest in-range index of the same clip.
        start_index: Added to every index (1 for frame folders named from 1).
        jitter: ``(rng, frame_interval)`` to add a random per-frame shift in
            ``[0, frame_interval)``, or None.

    Returns:
        Flat int64 array of ``num_clips * clip_len`` indices.
    """
    inds = offsets[:, None] + steps[None, :]  # (num_clips, clip_len)
    if jitter is not None:
        rng, frame_interval = jitter
        inds = inds + rng.integers(frame_interval, size=inds.shape)
    if out_of_bound_opt == "loop":
        inds = np.mod(inds, total_frames)
    else:
        safe = inds < total_frames
        last = np.max(np.where(safe, inds, 0), axis=1)
        inds = np.where(safe, inds, last[:, None])
    return (inds.reshape(-1) + start_index).astype(np.int64)


class SampleFrames:
    """Samples ``num_clips`` clips of ``clip_len`` frames spaced ``frame_interval`` apart.

    Train mode splits the video into ``num_clips`` equal segments and draws one random clip start
    in each; test mode spreads the clip starts evenly (2D models, ``clip_len == 1``: the centre of
    each segment; 3D models: from the first to the last possible start, or the middle one for a
    single clip). Semantics follow MMAction2 1.2.0's ``SampleFrames`` exactly, including its
    quirks:

    * ``twice_sample`` (test mode only) doubles the number of clips. For ``clip_len == 1`` it
      appends the segment starts to the segment centres (the TSM protocol). For ``clip_len > 1``
      MMAction2 keeps the spacing computed for ``num_clips`` and simply continues it, so the
      extra clips wrap around the video via ``out_of_bound_opt``; this is reproduced as is.
    * In train mode the clip span is ``clip_len * frame_interval`` while in test mode it is
      ``(clip_len - 1) * frame_interval + 1``.

    Args:
        clip_len: Frames per clip.
        frame_interval: Step between consecutive frames of a clip.
        num_clips: Clips per sample (before ``twice_sample`` doubling).
        temporal_jitter: Add a random shift in ``[0, frame_interval)`` to every frame index.
        twice_sample: In test mode, sample clips with and without a half-segment shift.
        out_of_bound_opt: "loop" (indices wrap around the video) or "repeat_last" (indices past
            the end repeat the last valid frame of the clip).
        test_mode: Deterministic evaluation sampling instead of random training sampling.
        start_index: Index of the first frame (1 for frame folders named ``img_00001.jpg``).
        keep_tail_frames: In train mode, let the random clip starts cover the tail of the video
            with a float segment length instead of an integer one.
        target_fps: If set, the clip spans ``clip_len * frame_interval`` frames at this frame
            rate: the span is rescaled by ``fps / target_fps`` (``fps`` passed to ``__call__``)
            and ``clip_len`` frames are spread evenly over it (the PySlowFast protocol). When the
            fps is unknown (None or 0, e.g. rawframes without a rate) the span is not rescaled.

    Attributes:
        clip_len: Frames per clip of the returned indices.
        num_clips: Clips in the returned indices (doubled by ``twice_sample`` in test mode).

    Example:
        >>> SampleFrames(clip_len=4, frame_interval=2, num_clips=2, test_mode=True)(20)
        array([ 0,  2,  4,  6, 13, 15, 17, 19])
    """

    def __init__(
        self,
        clip_len: int,
        frame_interval: int = 1,
        num_clips: int = 1,
        *,
        temporal_jitter: bool = False,
        twice_sample: bool = False,
        out_of_bound_opt: str = "loop",
        test_mode: bool = False,
        start_index: int = 0,
        keep_tail_frames: bool = False,
        target_fps: float | None = None,
    ) -> None:
        _check_positive(clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips)
        if out_of_bound_opt not in _OUT_OF_BOUND_OPTS:
            raise InputError(f"out_of_bound_opt must be one of {_OUT_OF_BOUND_OPTS}, got {out_of_bound_opt!r}")
        if test_mode and twice_sample and clip_len > 1 and num_clips == 1:
            # MMAction2 divides by (num_clips - 1) here and raises ZeroDivisionError.
            raise InputError("twice_sample with clip_len > 1 needs num_clips > 1 (clip spacing is undefined)")
        if target_fps is not None and target_fps <= 0:
            raise InputError(f"target_fps must be positive, got {target_fps!r}")
        self.clip_len = int(clip_len)
        self.frame_interval = int(frame_interval)
        self.base_num_clips = int(num_clips)
        self.temporal_jitter = temporal_jitter
        self.twice_sample = twice_sample
        self.out_of_bound_opt = out_of_bound_opt
        self.test_mode = test_mode
        self.start_index = int(start_index)
        self.keep_tail_frames = keep_tail_frames
        self.target_fps = target_fps

    @property
    def num_clips(self) -> int:
        """Number of clips in the returned indices."""
        doubled = self.test_mode and self.twice_sample
        return self.base_num_clips * (2 if doubled else 1)

    def _clip_span(self, fps: float | None) -> float:
        """Frames covered by one clip (MMAction2's ``ori_clip_len``)."""
        if self.target_fps is not None:
            ratio = fps / self.target_fps if fps else 1.0
            return float(np.maximum(1, self.clip_len * self.frame_interval * ratio))
        if self.test_mode:
            return (self.clip_len - 1) * self.frame_interval + 1
        return self.clip_len * self.frame_interval

    def _train_offsets(self, total: int, span: float, rng: np.random.Generator) -> np.ndarray:
        num_clips = self.base_num_clips
        if self.keep_tail_frames:
            avg_interval = (total - span + 1) / float(num_clips)
            if total > span - 1:
                base = np.arange(num_clips) * avg_interval
                return (base + rng.uniform(0, avg_interval, num_clips)).astype(np.int64)
            return np.zeros(num_clips, dtype=np.int64)
        avg_interval = (total - span + 1) // num_clips
        if avg_interval > 0:
            return np.arange(num_clips) * avg_interval + rng.integers(int(avg_interval), size=num_clips)
        if total > max(num_clips, span):
            return np.sort(rng.integers(int(total - span + 1), size=num_clips))
        if avg_interval == 0:
            ratio = (total - span + 1.0) / num_clips
            return np.around(np.arange(num_clips) * ratio)
        return np.zeros(num_clips, dtype=np.int64)

    def _test_offsets(self, total: int, span: float) -> np.ndarray:
        num_clips = self.base_num_clips
        if self.clip_len == 1:  # 2D models: centre of each segment
            avg_interval = total / float(num_clips)
            base = np.arange(num_clips) * avg_interval
            offsets = base + avg_interval / 2.0
            return np.concatenate([offsets, base]) if self.twice_sample else offsets
        max_offset = max(total - span, 0)
        if self.num_clips == 1:
            return np.array([max_offset // 2])
        between = max_offset / float(num_clips - 1)
        if self.target_fps is not None:
            return np.arange(self.num_clips) * np.floor(between)
        return np.round(np.arange(self.num_clips) * between)

    def __call__(
        self, total_frames: int, rng: np.random.Generator | None = None, fps: float | None = None
    ) -> np.ndarray:
        """Returns the frame indices of one sample.

        Args:
            total_frames: Number of frames in the video.
            rng: Source of train-mode randomness; a fresh unseeded generator if None.
            fps: Frame rate of the video; only used with ``target_fps``.

        Returns:
            int64 array of shape ``(num_clips * clip_len,)``.
        """
        total = _check_total_frames(total_frames)
        span = self._clip_span(fps)
        if self.test_mode:
            offsets = self._test_offsets(total, span)
        else:
            rng = np.random.default_rng() if rng is None else rng
            offsets = self._train_offsets(total, span, rng)
        if self.target_fps is not None:
            steps = np.linspace(0, span - 1, self.clip_len).astype(np.int64)
        else:
            steps = np.arange(self.clip_len) * self.frame_interval
        jitter = None
        if self.temporal_jitter:
            jitter = (np.random.default_rng() if rng is None else rng, self.frame_interval)
        return _offsets_to_indices(offsets, steps, total, self.out_of_bound_opt, self.start_index, jitter)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(clip_len={self.clip_len}, frame_interval={self.frame_interval}, "
            f"num_clips={self.base_num_clips}, temporal_jitter={self.temporal_jitter}, "
            f"twice_sample={self.twice_sample}, out_of_bound_opt={self.out_of_bound_opt!r}, "
            f"test_mode={self.test_mode}, start_index={self.start_index}, "
            f"keep_tail_frames={self.keep_tail_frames}, target_fps={self.target_fps})"
        )


class UniformSample:
    """Splits the video into ``clip_len`` equal segments and takes one frame from each.

    Follows MMAction2 1.2.0's ``UniformSample`` (the PySlowFast Something-Something protocol).
    Train mode draws a random frame in each segment; test mode takes, for clip ``k`` of
    ``num_clips``, the frame ``(k + 1) / (num_clips + 1)`` of the way into each segment. Videos
    shorter than ``clip_len`` repeat frames rather than wrap around.

    Deviation: in train mode MMAction2 returns a single clip whatever ``num_clips`` is (while
    reporting ``num_clips`` clips downstream); vidlab draws ``num_clips`` independent clips so
    the output always holds ``num_clips * clip_len`` indices. Both agree for ``num_clips=1``,
    the only value MMAction2's recipes use in training.

    Args:
        clip_len: Frames per clip (number of segments).
        num_clips: Clips per sample.
        test_mode: Deterministic evaluation sampling instead of random training sampling.
        start_index: Index of the first frame.

    Attributes:
        clip_len: Frames per clip of the returned indices.
        num_clips: Clips in the returned indices.
    """

    def __init__(self, clip_len: int, num_clips: int = 1, *, test_mode: bool = False, start_index: int = 0) -> None:
        _check_positive(clip_len=clip_len, num_clips=num_clips)
        self.clip_len = int(clip_len)
        self.num_clips = int(num_clips)
        self.test_mode = test_mode
        self.start_index = int(start_index)

    def __call__(
        self, total_frames: int, rng: np.random.Generator | None = None, fps: float | None = None
    ) -> np.ndarray:
        """Returns the frame indices of one sample.

        Args:
            total_frames: Number of frames in the video.
            rng: Source of train-mode randomness; a fresh unseeded generator if None.
            fps: Frame rate of the video; accepted for a common sampler interface, not used.

        Returns:
            int64 array of shape ``(num_clips * clip_len,)``.
        """
        total = _check_total_frames(total_frames)
        seg_size = float(total - 1) / self.clip_len
        seg = np.arange(self.clip_len)
        starts = np.round(seg_size * seg).astype(np.int64)
        if self.test_mode:
            duration = seg_size / (self.num_clips + 1)
            shifts = (duration * np.arange(1, self.num_clips + 1)).astype(np.int64)
            inds = starts[None, :] + shifts[:, None]  # (num_clips, clip_len)
        else:
            rng = np.random.default_rng() if rng is None else rng
            ends = np.round(seg_size * (seg + 1)).astype(np.int64)
            inds = rng.integers(starts, ends + 1, size=(self.num_clips, self.clip_len))
        return (inds.reshape(-1) + self.start_index).astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(clip_len={self.clip_len}, num_clips={self.num_clips}, "
            f"test_mode={self.test_mode}, start_index={self.start_index})"
        )


class SparseSample(UniformSample):
    """Whole-video sparse sampling as VideoMamba's ``Kinetics_sparse`` and ``LVU`` datasets do it (long-term video).

    The video is split into ``clip_len`` segments of ``seg = (total_frames - 1) / clip_len`` frames. Training takes
    a random frame in ``[round(seg * i), round(seg * (i + 1))]`` of each segment; test clip ``k`` of ``num_clips``
    takes ``round(seg * i) + int(seg / (num_clips + 1) * (k + 1))`` (VideoMamba's ``test_num_segment`` is
    ``num_clips``; its validation pass is ``num_clips=1``). Every index is clamped to the last frame, as
    VideoMamba's ``min(idx, max_frame)``. Indices are those of :class:`UniformSample` (MMAction2's) with that clamp;
    a window of a long video (``data.windows``) is sampled the same way inside the window's frames.

    Args: as :class:`UniformSample`; ``clip_len`` is VideoMamba's ``num_frames`` (32 or 64 for long videos).
    """

    def __call__(
        self, total_frames: int, rng: np.random.Generator | None = None, fps: float | None = None
    ) -> np.ndarray:
        inds = super().__call__(total_frames, rng, fps) - self.start_index
        return (np.minimum(inds, int(total_frames) - 1) + self.start_index).astype(np.int64)


class DenseSampleFrames:
    """Samples clips densely from a window of ``sample_range`` frames (the I3D/Non-local protocol).

    The ``num_clips`` clips start ``sample_range // num_clips`` frames apart inside one window.
    Train mode places the window at a random position; test mode repeats the clips for
    ``num_sample_positions`` window positions spread evenly over the video, so a test sample holds
    ``num_clips * num_sample_positions`` clips. Follows MMAction2 1.2.0's ``DenseSampleFrames``,
    including its train-mode window draw from ``[0, positions - 2]`` (the last position is never
    drawn).

    Args:
        clip_len: Frames per clip.
        frame_interval: Step between consecutive frames of a clip.
        num_clips: Clips per window.
        sample_range: Length of the window in frames.
        num_sample_positions: Window positions in test mode.
        temporal_jitter: Add a random shift in ``[0, frame_interval)`` to every frame index.
        out_of_bound_opt: "loop" or "repeat_last", as in :class:`SampleFrames`.
        test_mode: Deterministic evaluation sampling instead of random training sampling.
        start_index: Index of the first frame.

    Attributes:
        clip_len: Frames per clip of the returned indices.
        num_clips: Clips in the returned indices (``num_clips * num_sample_positions`` in test
            mode).
    """

    def __init__(
        self,
        clip_len: int,
        frame_interval: int = 1,
        num_clips: int = 1,
        *,
        sample_range: int = 64,
        num_sample_positions: int = 10,
        temporal_jitter: bool = False,
        out_of_bound_opt: str = "loop",
        test_mode: bool = False,
        start_index: int = 0,
    ) -> None:
        _check_positive(
            clip_len=clip_len,
            frame_interval=frame_interval,
            num_clips=num_clips,
            sample_range=sample_range,
            num_sample_positions=num_sample_positions,
        )
        if out_of_bound_opt not in _OUT_OF_BOUND_OPTS:
            raise InputError(f"out_of_bound_opt must be one of {_OUT_OF_BOUND_OPTS}, got {out_of_bound_opt!r}")
        self.clip_len = int(clip_len)
        self.frame_interval = int(frame_interval)
        self.base_num_clips = int(num_clips)
        self.sample_range = int(sample_range)
        self.num_sample_positions = int(num_sample_positions)
        self.temporal_jitter = temporal_jitter
        self.out_of_bound_opt = out_of_bound_opt
        self.test_mode = test_mode
        self.start_index = int(start_index)

    @property
    def num_clips(self) -> int:
        """Number of clips in the returned indices."""
        return self.base_num_clips * (self.num_sample_positions if self.test_mode else 1)

    def __call__(
        self, total_frames: int, rng: np.random.Generator | None = None, fps: float | None = None
    ) -> np.ndarray:
        """Returns the frame indices of one sample.

        Args:
            total_frames: Number of frames in the video.
            rng: Source of train-mode randomness; a fresh unseeded generator if None.
            fps: Frame rate of the video; accepted for a common sampler interface, not used.

        Returns:
            int64 array of shape ``(num_clips * clip_len,)``.
        """
        total = _check_total_frames(total_frames)
        positions = max(1, 1 + total - self.sample_range)
        base = np.arange(self.base_num_clips) * (self.sample_range // self.base_num_clips)
        if self.test_mode:
            starts = np.linspace(0, positions - 1, num=self.num_sample_positions, dtype=int)
        else:
            rng = np.random.default_rng() if rng is None else rng
            starts = np.array([0 if positions == 1 else rng.integers(0, max(positions - 1, 1))])
        offsets = ((starts[:, None] + base[None, :]) % total).reshape(-1)  # (positions * num_clips,)
        steps = np.arange(self.clip_len) * self.frame_interval
        jitter = None
        if self.temporal_jitter:
            jitter = (np.random.default_rng() if rng is None else rng, self.frame_interval)
        return _offsets_to_indices(offsets, steps, total, self.out_of_bound_opt, self.start_index, jitter)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(clip_len={self.clip_len}, frame_interval={self.frame_interval}, "
            f"num_clips={self.base_num_clips}, sample_range={self.sample_range}, "
            f"num_sample_positions={self.num_sample_positions}, temporal_jitter={self.temporal_jitter}, "
            f"out_of_bound_opt={self.out_of_bound_opt!r}, test_mode={self.test_mode}, "
            f"start_index={self.start_index})"
        )
