"""Frame-accurate video decoding: ``VideoReader(path).read(indices) -> uint8 (T, H, W, 3)``.

The PyAV backend decodes only what a request needs and returns exactly the frames a plain sequential
decode (``for frame in container.decode(video=0)``) would give at those positions.

How it works:

* **Frame table.** Opening a file demuxes its video packets once (packet headers only, nothing is
  decoded; about 1 ms for a 10 s clip). Sorting the packet presentation timestamps (pts) gives frame
  ``i`` = the ``i``-th smallest pts, for constant and variable frame rate alike, so no frame-rate
  arithmetic is involved (``round((pts - pts0) * time_base * fps)`` gives the same indices on
  constant-rate files). The same pass yields the exact frame count, every keyframe's position and a
  truncation check (a packet cut short, or fewer packets than the header declares, fails the open).
  The pass reads the whole file once: cheap for clips, I/O-bound for long films.
* **Seek policy.** Requested indices are served in ascending order. For the next missing frame ``t``
  the reader seeks to the last keyframe at or before ``t`` only if that keyframe's packet lies beyond
  the next packet the decoder would read anyway; otherwise it keeps decoding forward (the frame is in
  the current GOP or already inside the decoder's reorder buffer). When every frame still wanted from
  the current GOP has been sent, the decoder is flushed instead of fed more packets. A seek targets
  the keyframe's pts (Matroska, constant-rate MP4) or its dts shifted by the stream's initial delay
  (MP4 in general), whichever lands exactly; the landing packet is checked, and a landing on an
  earlier keyframe is accepted (exact, just slower), a later one rejected (then the file start).
* **Matching.** Decoded frames are matched to indices by their pts through the table, so B-frame
  reordering cannot shift frames. A decoded pts missing from the table, or going backwards, means the
  file's timestamps cannot be trusted; the reader then switches to counting frames (below). So does a
  frame that was missed twice and, decoded once more from its keyframe, comes out after a frame with a
  later pts (timestamps that jump back against the decode order); one that never comes out is corrupt.
* **Skipping.** For codecs where it is known to be exact (H.264, MPEG-4 part 2, MPEG-1/2) the
  decoder runs with ``skip_frame="NONREF"`` for every packet whose frame is not requested, and with
  ``"DEFAULT"`` for packets of requested frames. The setting is read when a packet is decoded, not
  when its frame comes out of the reorder buffer, and with single-threaded decoding PyAV's
  ``decode(packet)`` returns only once the decoder wants more input, i.e. after that packet was
  decoded. As each packet carries its frame's own pts, the switch is exact: a requested frame is
  never skipped, and skipped frames are never references. A requested frame that still fails to
  appear is retried once from its keyframe with skipping off, then reported.
* **Counting mode.** AVI files carry no real presentation timestamps (FFmpeg guesses them and gets
  B-frames wrong), and their keyframe flags are not reliable either. For them, and for files whose
  packets lack or repeat timestamps, frames are numbered by decoder output order, decoding forward
  from the start of the file (restarting it when a request goes backwards). This is exact but pays for
  every frame up to the last one requested.
* **Conversion.** Only returned frames are converted, to RGB and to the ``short_side`` size in one
  swscale pass, with a per-thread swscale context reused across readers.

Decoding is single-threaded: with 2 cores shared with training, FFmpeg's threads were slower.
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from vidlab.errors import InputError, MissingDependencyError, VidlabError

__all__ = ["VideoDecodeError", "VideoReader"]

# Frames larger than this (8192 x 8192; 8K UHD is 7680 x 4320) are refused before any is decoded: a header declaring
# 16384 x 16384 would otherwise allocate gigabytes per frame.
MAX_PIXELS = 8192 * 8192

# Codecs whose "NONREF" skipping drops only frames no other frame predicts from: H.264 pictures with
# nal_ref_idc 0 and MPEG B-pictures never serve as references (tests compare against a full decode).
# Not HEVC: FFmpeg skips every sub-layer non-reference picture, which higher temporal sub-layers may use.
_SKIP_SAFE_CODECS = frozenset({"h264", "mpeg4", "mpeg1video", "mpeg2video"})
_INTERPOLATION_ALIASES = {"nearest": "POINT", "linear": "BILINEAR", "cubic": "BICUBIC"}
# One swscale context per thread, reused across readers: setting one up costs more than converting a frame.
_THREAD_STATE = threading.local()


class VideoDecodeError(VidlabError, RuntimeError):
    """A video file cannot be opened or some of its frames cannot be decoded.

    Attributes:
        path: The file the error is about.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        super().__init__(f"{self.path}: {reason}")


class _UntrustedTimestamps(Exception):
    """Decoded frames carry timestamps that do not match the packet table."""


def _is_end(pkt: Any) -> bool:
    """Whether ``pkt`` is the empty packet PyAV's demuxer yields at the end of the file."""
    return pkt.size == 0 and pkt.pts is None and pkt.dts is None


def check_media_file(path: str, error: type[VideoDecodeError] = VideoDecodeError, what: str = "a video file") -> None:
    """Raise ``error`` naming ``path`` if it is missing, a directory or empty (before FFmpeg is asked to open it)."""
    if not os.path.exists(path):
        raise error(path, "no such file")
    if os.path.isdir(path):
        raise error(path, f"is a directory, not {what}")
    if os.path.getsize(path) == 0:
        raise error(path, "file is empty (0 bytes)")


def _output_size(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    """Size (width, height) after resizing the shorter side to ``short_side``, keeping the aspect."""
    if short_side is None:
        return width, height
    if width <= height:
        return short_side, max(1, int(height * short_side / width + 0.5))
    return max(1, int(width * short_side / height + 0.5)), short_side


def _parse_interpolation(name: str) -> Interpolation:
    key = _INTERPOLATION_ALIASES.get(name.lower(), name.upper())
    if key not in Interpolation.__members__:
        choices = "bilinear, bicubic, area, nearest, lanczos, fast_bilinear"
        raise InputError(f"unknown interpolation {name!r}; choose one of: {choices}")
    return Interpolation[key]


class VideoReader:
    """Reads frames of a video file by index.

    Frames are exactly those a plain sequential decode gives at the same positions. A reader keeps
    decoder state between reads and is not thread-safe: use one per thread or worker process.

    Example:
        >>> with VideoReader("clip.mp4", short_side=256) as reader:
        ...     clip = reader.read([0, 8, 16, 24])  # uint8 (4, 256, W, 3), RGB

    Attributes:
        path: The video file.
        num_frames: Number of frames; every index in ``[0, num_frames)`` is readable. Counted from
            the container's packets (exact, whatever the header says), or by decord with that backend.
        fps: Average frame rate.
        duration: Length in seconds (stream duration, else container duration, else frames / fps).
        width: Width of the returned frames (after ``short_side`` resizing).
        height: Height of the returned frames.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        backend: str = "pyav",
        short_side: int | None = None,
        interpolation: str = "bilinear",
    ) -> None:
        """Opens a video.

        Args:
            path: Video file.
            backend: ``"pyav"`` (default) or ``"decord"`` (needs ``pip install vidlab[decord]``;
                decord resizes with its own filter and ignores ``interpolation``).
            short_side: If set, frames are resized so that their shorter side has this length
                (the longer side is rounded to the nearest integer).
            interpolation: Resize filter: ``"bilinear"``, ``"bicubic"``, ``"area"``, ``"nearest"``,
                ``"lanczos"`` or ``"fast_bilinear"``.

        Raises:
            VideoDecodeError: The file is missing, empty, truncated, corrupt or has no video stream.
            ImportError: ``backend="decord"`` but decord is not installed.
            ValueError: Unknown backend or interpolation, or a non-positive ``short_side``.
        """
        self.path = os.fspath(path)
        if short_side is not None and (isinstance(short_side, bool) or int(short_side) != short_side or short_side < 1):
            raise InputError(f"short_side must be a positive integer or None, got {short_side!r}")
        interp = _parse_interpolation(interpolation)
        if backend == "pyav":
            self._impl: _PyAVReader | _DecordReader = _PyAVReader(self.path, short_side, interp)
        elif backend == "decord":
            self._impl = _DecordReader(self.path, short_side)
        else:
            raise InputError(f"unknown backend {backend!r}; choose 'pyav' or 'decord'")
        self.backend = backend
        self.num_frames: int = self._impl.num_frames
        self.fps: float = self._impl.fps
        self.duration: float = self._impl.duration
        self.width: int = self._impl.width
        self.height: int = self._impl.height
        self._closed = False

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Decodes the frames at ``indices``.

        Args:
            indices: Frame indices in ``[0, num_frames)``, in any order, repeats allowed.

        Returns:
            uint8 array (T, H, W, 3), RGB, frame ``k`` being the one at ``indices[k]``.

        Raises:
            IndexError: An index is outside ``[0, num_frames)``.
            VideoDecodeError: A requested frame cannot be decoded (e.g. corrupt data).
        """
        if self._closed:
            raise InputError(f"{self.path}: read() on a closed VideoReader")
        idx = np.asarray(indices)
        if idx.ndim != 1:
            raise InputError(f"{self.path}: indices must be 1-D, got shape {idx.shape}")
        if idx.size == 0:
            return np.empty((0, self.height, self.width, 3), np.uint8)
        if not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"{self.path}: indices must be integers, got dtype {idx.dtype}")
        bad = idx[(idx < 0) | (idx >= self.num_frames)]
        if bad.size:
            raise IndexError(
                f"{self.path}: frame index {int(bad[0])} out of range; valid indices are "
                f"0..{self.num_frames - 1} ({self.num_frames} frames)"
            )
        unique, inverse = np.unique(idx.astype(np.int64), return_inverse=True)
        if unique.size == idx.size and np.array_equal(unique, idx):
            return self._impl.read_sorted(unique)
        return self._impl.read_sorted(unique, inverse.reshape(-1))

    def close(self) -> None:
        """Releases the file. Further ``read`` calls raise ``ValueError``."""
        if not self._closed:
            self._impl.close()
            self._closed = True

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"VideoReader({self.path!r}, backend={self.backend!r}, num_frames={self.num_frames}, "
            f"fps={self.fps:.3f}, size={self.width}x{self.height})"
        )


class _PyAVReader:
    """The PyAV backend; see the module docstring for the decoding strategy."""

    def __init__(self, path: str, short_side: int | None, interpolation: Interpolation) -> None:
        self.path = path
        check_media_file(path)
        self._container: Any = None
        self._open()
        try:
            self._scan_packets()
        except BaseException:
            self.close()
            raise
        stream = self._stream
        self.fps = self._frame_rate()
        self.duration = self._duration()
        self.width, self.height = _output_size(stream.codec_context.width, stream.codec_context.height, short_side)
        self._interpolation = interpolation
        self._skip_ok = stream.codec_context.name in _SKIP_SAFE_CODECS
        self._reset_state()
        # The scan left the demuxer at the end of the file: the first read seeks straight to the
        # keyframe it needs (or, in counting mode, reopens the file).
        self._eof = True

    # ----------------------------------------------------------------------------------------------
    # opening and the frame table

    def _open(self) -> None:
        """(Re)opens the container; the decoder starts at the beginning of the file."""
        if self._container is not None:
            self._container.close()
            self._container = None
        # skip_frame=all reaches only the decoders FFmpeg runs while probing the streams: most containers
        # state the frame size, and not decoding a first keyframe there saves ~4 ms per open.
        for options in ({"skip_frame": "all"}, {}):
            try:
                container = av.open(self.path, metadata_errors="ignore", options=options)
            except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
                raise VideoDecodeError(self.path, f"cannot open as a video ({err})") from err
            if not container.streams.video:
                container.close()
                raise VideoDecodeError(self.path, "contains no video stream")
            codec = container.streams.video[0].codec_context
            if codec is None:  # a codec id FFmpeg does not know (a damaged header)
                container.close()
                raise VideoDecodeError(self.path, "the video stream's codec is unknown (damaged header?)")
            if codec.width > 0 and codec.height > 0:
                break
            container.close()
        else:
            raise VideoDecodeError(self.path, "video stream has no frame size")
        if codec.width * codec.height > MAX_PIXELS:  # a damaged or hostile header: decoding would exhaust memory
            container.close()
            raise VideoDecodeError(
                self.path, f"declared frame size {codec.width}x{codec.height} exceeds the limit of {MAX_PIXELS:,} "
                "pixels (vidlab.data.decode.MAX_PIXELS)"
            )  # fmt: skip
        self._container = container
        self._stream = container.streams.video[0]
        self._codec = self._stream.codec_context
        self._codec.thread_count = 1
        self._skip_mode = "DEFAULT"
        self._packets: Iterator[Any] = container.demux(self._stream)

    def _scan_packets(self) -> None:
        """Demuxes every video packet once (no decoding) and builds the frame table."""
        pts: list[int | None] = []
        dts: list[int | None] = []
        keys: list[bool] = []
        declared = 0
        seen_key = False
        try:
            for pkt in self._container.demux(self._stream):
                if _is_end(pkt):
                    continue  # the dummy packet PyAV appends at end of file
                declared += 1
                if pkt.is_corrupt:
                    raise VideoDecodeError(self.path, f"packet {declared - 1} is incomplete; file truncated or corrupt")
                seen_key = seen_key or bool(pkt.is_keyframe)
                # Frames before the first keyframe (a stream cut mid-GOP) cannot be decoded; discarded
                # packets (e.g. an edit list's pre-roll) are decoded but never output.
                if pkt.size == 0 or pkt.is_discard or not seen_key:
                    continue
                pts.append(pkt.pts)
                dts.append(pkt.dts)
                keys.append(bool(pkt.is_keyframe))
        except av.error.FFmpegError as err:
            reason = f"cannot read packet {declared} ({err}); file truncated or corrupt"
            raise VideoDecodeError(self.path, reason) from err
        header = self._stream.frames
        if header and header > declared:
            raise VideoDecodeError(
                self.path, f"header declares {header} frames but only {declared} are present; file truncated"
            )
        if not pts:
            raise VideoDecodeError(self.path, "video stream holds no frames")
        self.num_frames = len(pts)
        self._pkt_pts, self._pkt_dts, self._pkt_key = pts, dts, keys
        fmt = self._container.format.name.split(",")
        timestamps_ok = "avi" not in fmt and None not in pts and len(set(pts)) == len(pts)
        self._mode = "pts" if timestamps_ok else "count"
        if self._mode == "pts":
            self._build_pts_table()

    def _build_pts_table(self) -> None:
        """Maps pts <-> display index <-> decode position, and lists keyframes in display order."""
        pts = np.asarray(self._pkt_pts, dtype=np.int64)
        dec_of_disp = np.argsort(pts, kind="stable")  # display index -> decode position
        disp_of_dec = np.empty_like(dec_of_disp)
        disp_of_dec[dec_of_disp] = np.arange(pts.size)
        self._dec_of_disp: list[int] = dec_of_disp.tolist()
        self._disp_of_dec: list[int] = disp_of_dec.tolist()
        self._dec_of_pts = {p: j for j, p in enumerate(self._pkt_pts)}
        self._disp_of_pts = {p: int(disp_of_dec[j]) for j, p in enumerate(self._pkt_pts)}
        # Keyframes sorted by display index; decoding starts at a keyframe's packet.
        keys = sorted((self._disp_of_dec[j], j) for j, k in enumerate(self._pkt_key) if k)
        self._key_disp = [d for d, _ in keys]
        self._key_dec = [j for _, j in keys]
        first_dts = self._pkt_dts[0]
        self._dts_shift = None if first_dts is None else self._pkt_pts[0] - first_dts
        self._prefer_shifted_dts = False

    def _frame_rate(self) -> float:
        stream = self._stream
        for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
            if rate is not None and rate > 0:
                return float(rate)
        span = self._stream_duration()
        return self.num_frames / span if span else 0.0

    def _stream_duration(self) -> float | None:
        stream = self._stream
        if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None and self._container.duration > 0:
            return self._container.duration / av.time_base
        return None

    def _duration(self) -> float:
        span = self._stream_duration()
        if span is not None:
            return span
        return self.num_frames / self.fps if self.fps else 0.0

    # ----------------------------------------------------------------------------------------------
    # reading

    def _reset_state(self) -> None:
        """Decoder state after (re)opening the file at its start."""
        self._sent_pos = -1  # decode position of the last packet sent since the last seek
        self._trusted_from = 0  # packets at or after this position were sent with the current request known
        self._last_out = -1  # display index of the last frame the decoder returned
        self._run_start = 0  # frames before this display index (leading frames after a seek) are ignored
        self._eof = False
        self._allow_skip = True
        self._sought_dec = -1  # decode position of the keyframe the current run's seek aimed at
        self._count_next = 0  # counting mode: index of the next frame the decoder will return

    def read_sorted(self, wanted: np.ndarray, inverse: np.ndarray | None = None) -> np.ndarray:
        """Decodes the frames at ``wanted`` (sorted, unique, in range) into (len(wanted), H, W, 3), or, with
        ``inverse``, into (len(inverse), H, W, 3) where row ``r`` is frame ``wanted[inverse[r]]``.

        Each frame is decoded and converted once and written straight into all of its rows: a request with repeated
        or unordered indices (overlapping multi-clip sampling) costs no second array and no gather copy.
        """
        rows = None if inverse is None else _rows_of(inverse, wanted.size)
        out = np.empty((wanted.size if inverse is None else inverse.size, self.height, self.width, 3), np.uint8)
        todo = _Pending(wanted.tolist(), rows)
        if self._mode == "pts":
            try:
                self._read_by_pts(todo, out)
                return out
            except _UntrustedTimestamps:
                self._mode = "count"  # for good: this file's frame timestamps do not match its packets
                self._open()
                self._reset_state()
                todo = _Pending(wanted.tolist(), rows)
        self._read_by_count(todo, out)
        return out

    def _read_by_pts(self, todo: _Pending, out: np.ndarray) -> None:
        self._trusted_from = self._sent_pos + 1
        attempts: dict[int, int] = {}
        while True:
            t = todo.first()
            if t is None:
                return
            if self._must_seek(t):
                tries = attempts.get(t, 0)
                if tries >= 2:
                    if self._comes_out_of_order(t):
                        raise _UntrustedTimestamps
                    raise VideoDecodeError(
                        self.path, f"frame {t} could not be decoded (of {self.num_frames}); file corrupt or truncated"
                    )
                attempts[t] = tries + 1
                self._seek_before(t, allow_skip=tries == 0)
            self._decode_forward(todo, out)

    def _comes_out_of_order(self, t: int) -> bool:
        """Whether frame ``t``, missed twice, does come out of the decoder, only later than its pts say.

        Decoding from its keyframe with skipping off, a frame that never appears is corrupt; one that appears after
        a frame with a later pts means the file's timestamps disagree with its decode order (pts that jump back).
        Decoding stops 32 packets past ``t``'s (more than any reorder delay).
        """
        self._seek_before(t, allow_skip=False)
        self._set_skip("DEFAULT")
        wanted, last = self._pkt_pts[self._dec_of_disp[t]], self._dec_of_disp[t] + 32
        for pkt in self._packets:
            end = _is_end(pkt)
            j = None if end else self._dec_of_pts.get(pkt.pts)
            frames = self._decode(None if end else pkt, "while checking timestamps")
            if any(frame.pts == wanted for frame in frames):
                return True
            if end or (j is not None and j > last):
                break
        self._eof = True  # the next read seeks
        return False

    def _must_seek(self, t: int) -> bool:
        """Whether frame ``t`` needs a seek, or can be reached by decoding on from the current state."""
        if self._eof or t <= self._last_out or t < self._run_start:
            return True
        dec = self._dec_of_disp[t]
        if dec <= self._sent_pos:  # already sent: pending in the decoder unless skipped before this request
            return dec < self._trusted_from
        return self._jump_pays(t)

    def _jump_pays(self, t: int) -> bool:
        """Whether seeking to the keyframe of unsent frame ``t`` skips packets decoding on would send.

        With no keyframe before ``t`` only the file start leads to it; and a keyframe this run already
        tried to seek to (the demuxer landed earlier) is reached by decoding on.
        """
        k = self._key_index(t)
        if k < 0:
            return False
        key_dec = self._key_dec[k]
        return key_dec > self._sent_pos + 1 and key_dec > self._sought_dec

    def _key_index(self, t: int) -> int:
        """Position in the keyframe list of the last keyframe at or before display index ``t``."""
        return bisect.bisect_right(self._key_disp, t) - 1

    def _seek_timestamps(self, j: int) -> list[int]:
        """Timestamps that should make the demuxer land on the keyframe packet at decode position ``j``.

        Demuxers index keyframes by pts (Matroska, MP4 with constant frame rate) or by dts shifted by
        the stream's initial delay (MP4 in general), so both are tried, in the order that worked last.
        """
        pts, dts = self._pkt_pts[j], self._pkt_dts[j]
        shifted = dts + self._dts_shift if dts is not None and self._dts_shift is not None else None
        found = [ts for ts in (pts, shifted) if ts is not None]
        if self._prefer_shifted_dts:
            found.reverse()
        return list(dict.fromkeys(found))

    def _seek_before(self, t: int, allow_skip: bool) -> None:
        """Positions the demuxer at the last keyframe at or before ``t`` (or earlier), decoder flushed."""
        k = self._key_index(t)
        if k < 0:
            self._open()
            self._start_run(0, 0, allow_skip)
            return
        target = self._key_dec[k]
        best: tuple[int, int] | None = None  # (landing decode position, timestamp) short of the target
        for i in range(k, max(k - 2, -1), -1):  # this keyframe, then the one before it
            for n, ts in enumerate(self._seek_timestamps(self._key_dec[i])):
                landed = self._try_seek(ts, target)
                if landed == self._key_dec[i]:
                    if i == k and n > 0:
                        self._prefer_shifted_dts = not self._prefer_shifted_dts
                    self._start_run(landed, target, allow_skip)
                    return
                if landed is not None and (best is None or landed > best[0]):
                    best = (landed, ts)
        if best is not None and self._try_seek(best[1], target) == best[0]:
            self._start_run(best[0], target, allow_skip)
            return
        self._open()  # no usable seek: restart from the top of the file
        self._start_run(0, target, allow_skip)

    def _try_seek(self, ts: int, target_dec: int) -> int | None:
        """Seeks to ``ts``; returns the landing decode position if it is a keyframe at or before ``target_dec``."""
        try:
            self._container.seek(ts, stream=self._stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            return None
        packets = self._container.demux(self._stream)
        consumed: list[Any] = []  # packets read while checking; they still have to be decoded
        for pkt in packets:
            if _is_end(pkt):
                return None  # end of file
            consumed.append(pkt)
            if not consumed[0].is_keyframe:
                return None
            j = self._dec_of_pts.get(pkt.pts)
            if j is None:  # e.g. a discarded pre-roll packet: look for the first frame packet
                if len(consumed) > 64:
                    return None
                continue
            if j > target_dec:
                return None
            self._packets = itertools.chain(consumed, packets)
            return j
        return None

    def _start_run(self, landed: int, sought: int, allow_skip: bool) -> None:
        """State after positioning the demuxer at decode position ``landed`` while aiming at ``sought``."""
        self._sought_dec = sought
        self._sent_pos = landed - 1
        self._trusted_from = landed
        self._last_out = -1
        self._run_start = 0 if landed == 0 else self._disp_of_dec[landed]
        self._eof = False
        self._allow_skip = allow_skip

    def _decode_forward(self, todo: _Pending, out: np.ndarray) -> None:
        """Sends packets until every wanted frame is out, a seek is due, or the file ends."""
        skip = self._skip_ok and self._allow_skip
        if not skip:
            self._set_skip("DEFAULT")
        for pkt in self._packets:
            if _is_end(pkt):
                frames = self._decode(None, "at the end of the stream")
                self._eof = True
            else:
                j = self._dec_of_pts.get(pkt.pts)
                if j is not None:
                    self._sent_pos = j
                    if skip:
                        self._set_skip("DEFAULT" if todo.wants(self._disp_of_dec[j]) else "NONREF")
                frames = self._decode(pkt, f"in packet {j} (decode order)")
            for frame in frames:
                self._accept(frame, todo, out)
            if self._eof:
                return
            t = todo.first()
            if t is None or self._must_seek(t):
                return
            if self._nothing_left_to_send(todo):
                self._drain(todo, out)
                return
        self._eof = True

    def _nothing_left_to_send(self, todo: _Pending) -> bool:
        """Whether every frame still wanted from this run is already inside the decoder."""
        u = todo.first_beyond(self._dec_of_disp, self._sent_pos)
        return u is None or self._jump_pays(u)

    def _drain(self, todo: _Pending, out: np.ndarray) -> None:
        """Ends the run: flushes the decoder's reorder buffer instead of decoding further packets."""
        self._eof = True
        for frame in self._decode(None, "while flushing"):
            self._accept(frame, todo, out)

    def _accept(self, frame: Any, todo: _Pending, out: np.ndarray) -> None:
        """Places a decoded frame by its pts; raises ``_UntrustedTimestamps`` where the pts contradict the table."""
        idx = self._disp_of_pts.get(frame.pts)
        if idx is None or idx <= self._last_out:
            raise _UntrustedTimestamps
        self._last_out = idx
        if idx >= self._run_start and todo.wants(idx):
            out[todo.take(idx)] = self._to_rgb(frame)

    def _set_skip(self, mode: str) -> None:
        if mode != self._skip_mode:
            self._codec.skip_frame = mode
            self._skip_mode = mode

    def _decode(self, pkt: Any, where: str) -> list[Any]:
        """Sends one packet (None: end of stream) and returns the frames the decoder has ready."""
        try:
            return self._codec.decode(pkt)
        except av.error.FFmpegError as err:
            raise VideoDecodeError(self.path, f"decoding failed {where} ({err})") from err

    def _read_by_count(self, todo: _Pending, out: np.ndarray) -> None:
        """Numbers frames by decoder output order, decoding forward from the start of the file."""
        first = todo.first()
        if first is None:
            return
        self._set_skip("DEFAULT")
        if self._eof or first < self._count_next:
            self._open()
            self._reset_state()
        for pkt in self._packets:
            is_end = _is_end(pkt)
            if is_end:
                frames = self._decode(None, "at the end of the stream")
            else:
                frames = self._decode(pkt, f"near frame {self._count_next}")
            for frame in frames:
                idx = self._count_next
                self._count_next += 1
                if todo.wants(idx):
                    out[todo.take(idx)] = self._to_rgb(frame)
            if is_end:
                break
            if todo.first() is None:
                return
        self._eof = True
        if todo.first() is not None:
            raise VideoDecodeError(
                self.path,
                f"frame {todo.first()} could not be decoded: the decoder returned only {self._count_next} "
                f"of {self.num_frames} frames; file corrupt or truncated",
            )

    def _to_rgb(self, frame: Any) -> np.ndarray:
        reformatter = getattr(_THREAD_STATE, "reformatter", None)
        if reformatter is None:
            reformatter = _THREAD_STATE.reformatter = VideoReformatter()
        # threads=1: swscale's default thread pool costs more than it saves on frames this small.
        # The size is always given so that the output shape holds even if a frame's size differs from
        # the one the container declares. Without resizing, convert as frame.to_ndarray() would.
        resize = (frame.width, frame.height) != (self.width, self.height)
        frame = reformatter.reformat(
            frame,
            width=self.width,
            height=self.height,
            format="rgb24",
            interpolation=self._interpolation if resize else Interpolation.BILINEAR,
            threads=1,
        )
        return frame.to_ndarray()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _rows_of(inverse: np.ndarray, n: int) -> list[int | list[int]]:
    """For each of ``n`` unique frames, its output row (an int) or rows (a list): where ``inverse`` points to it."""
    order = np.argsort(inverse, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inverse, minlength=n))[:-1])
    return [int(g[0]) if g.size == 1 else g.tolist() for g in groups]


class _Pending:
    """The sorted frame indices of one request that are still to be decoded.

    ``rows``: the output row(s) of each index (see :func:`_rows_of`); None when index ``k`` goes to row ``k``.
    """

    def __init__(self, indices: list[int], rows: list[int | list[int]] | None = None) -> None:
        self._indices = indices
        self._rows = rows
        self._slot = {t: i for i, t in enumerate(indices)}
        self._done = [False] * len(indices)
        self._next = 0

    def first(self) -> int | None:
        """Smallest index not yet decoded, or None when all are."""
        while self._next < len(self._indices) and self._done[self._next]:
            self._next += 1
        return self._indices[self._next] if self._next < len(self._indices) else None

    def first_beyond(self, dec_of_disp: list[int], sent_pos: int) -> int | None:
        """Smallest index not yet decoded whose packet (decode position) is after ``sent_pos``."""
        for i in range(self._next, len(self._indices)):
            t = self._indices[i]
            if not self._done[i] and dec_of_disp[t] > sent_pos:
                return t
        return None

    def wants(self, t: int) -> bool:
        slot = self._slot.get(t)
        return slot is not None and not self._done[slot]

    def take(self, t: int) -> int | list[int]:
        """Marks ``t`` decoded; returns its row, or list of rows, in the output."""
        slot = self._slot[t]
        self._done[slot] = True
        return slot if self._rows is None else self._rows[slot]


class _DecordReader:
    """The decord backend (optional dependency)."""

    def __init__(self, path: str, short_side: int | None) -> None:
        try:
            import decord
        except ImportError as err:
            raise MissingDependencyError(
                "backend='decord' needs the decord package: pip install vidlab[decord]"
            ) from err
        self.path = path
        if not os.path.isfile(path):
            raise VideoDecodeError(path, "no such file")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(path, "file is empty (0 bytes)")
        try:
            vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
            height, width = vr[0].shape[:2]
            self.width, self.height = _output_size(width, height, short_side)
            if (self.width, self.height) != (width, height):
                vr = decord.VideoReader(path, ctx=decord.cpu(0), width=self.width, height=self.height, num_threads=1)
                shape = vr[0].shape
                if shape != (self.height, self.width, 3):  # decord 0.6 mishandles some widths (e.g. 48, 72)
                    raise VideoDecodeError(
                        path, f"decord returns {shape} frames for size {self.width}x{self.height}; use backend='pyav'"
                    )
            vr.seek(0)
            self.num_frames = len(vr)
            self.fps = float(vr.get_avg_fps())
        except VideoDecodeError:
            raise
        except Exception as err:  # decord raises its own DECORDError and plain RuntimeErrors
            raise VideoDecodeError(path, f"decord cannot open it ({err})") from err
        self.duration = self.num_frames / self.fps if self.fps else 0.0
        self._vr = vr

    def read_sorted(self, wanted: np.ndarray, inverse: np.ndarray | None = None) -> np.ndarray:
        try:
            frames = self._vr.get_batch(wanted.tolist()).asnumpy()
        except Exception as err:
            raise VideoDecodeError(self.path, f"decord failed to decode frames ({err})") from err
        return frames if inverse is None else frames[inverse]

    def close(self) -> None:
        self._vr = None
