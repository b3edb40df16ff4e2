"""Tests for ``vidlab.data.decode``.

Synthetic videos paint each frame's index into its pixels, so a returned frame can be checked for
being the right one; every read is also compared, bit for bit, with a plain sequential decode.
"""

from __future__ import annotations

import sys
import time
import wave
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest

from tests.helpers import decode_all, read_index, write_indexed_video
from vidlab.data import VideoDecodeError, VideoReader

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "media"
NUM_FRAMES, GOP = 72, 12
VFR_DURATIONS = [80 if i % 3 == 2 else 40 for i in range(NUM_FRAMES)]  # ms

# name -> write_indexed_video arguments; the suffix picks the container.
VIDEOS = {
    "h264_25.mp4": {"fps": 25},
    "h264_24.mp4": {"fps": 24},
    "h264_30.mp4": {"fps": 30},
    "h264_nob.mp4": {"bframes": 0},
    "h264.mkv": {},
    "hevc.mp4": {"codec": "libx265"},
    "mpeg4.mp4": {"codec": "mpeg4", "bframes": 2},
    "mpeg2.mp4": {"codec": "mpeg2video", "bframes": 2},
    "mpeg4.avi": {"codec": "mpeg4", "bframes": 2},
    # Variable frame rate: every third frame lasts twice as long.
    "vfr.mp4": {"pts": np.cumsum([0] + VFR_DURATIONS[:-1]), "time_base": (1, 1000)},
}

PATTERNS = {
    "first": [0],
    "last": [NUM_FRAMES - 1],
    "sparse": np.linspace(0, NUM_FRAMES - 1, 8).round().astype(int).tolist(),
    "dense": list(range(30, 46)),
    "unsorted_repeated": [50, 3, 50, 17, 3, 71, 0, 17],
    "gop_crossing": [GOP - 1, GOP, GOP + 1, 2 * GOP - 1, 2 * GOP, 3 * GOP - 1, 3 * GOP],
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decode")
    return {name: write_indexed_video(root / name, num_frames=NUM_FRAMES, gop=GOP, **kw) for name, kw in VIDEOS.items()}


@cache
def reference(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    return decode_all(path, size)


def assert_frames(frames: np.ndarray, indices, path: Path, size: tuple[int, int] | None = None) -> None:
    assert frames.dtype == np.uint8 and frames.shape[0] == len(indices) and frames.shape[-1] == 3
    assert [read_index(f) for f in frames] == list(indices)
    np.testing.assert_array_equal(frames, reference(path, size)[np.asarray(indices)])


# --------------------------------------------------------------------------------------------------
# metadata


@pytest.mark.parametrize("fps", [24, 25, 30])
def test_metadata(videos, fps):
    with VideoReader(videos[f"h264_{fps}.mp4"]) as reader:
        assert reader.num_frames == NUM_FRAMES
        assert reader.fps == pytest.approx(fps)
        assert reader.duration == pytest.approx(NUM_FRAMES / fps, abs=1e-3)
        assert (reader.width, reader.height) == (96, 64)


@pytest.mark.parametrize("name", list(VIDEOS))
def test_num_frames_matches_full_decode(videos, name):
    with VideoReader(videos[name]) as reader:
        assert reader.num_frames == len(reference(videos[name])) == NUM_FRAMES
        assert_frames(reader.read([reader.num_frames - 1]), [NUM_FRAMES - 1], videos[name])


def test_variable_frame_rate_metadata(videos):
    with VideoReader(videos["vfr.mp4"]) as reader:
        assert reader.duration == pytest.approx(sum(VFR_DURATIONS) / 1000, abs=0.05)
        assert reader.fps == pytest.approx(NUM_FRAMES / reader.duration, rel=0.05)


# --------------------------------------------------------------------------------------------------
# reading the right frames


@pytest.mark.parametrize("pattern", list(PATTERNS))
@pytest.mark.parametrize("name", list(VIDEOS))
def test_read_patterns(videos, name, pattern):
    indices = PATTERNS[pattern]
    with VideoReader(videos[name]) as reader:
        assert_frames(reader.read(indices), indices, videos[name])


@pytest.mark.parametrize("name", list(VIDEOS))
def test_many_reads_on_one_reader(videos, name):
    """Reads going forwards, backwards and repeating reuse the decoder state correctly."""
    rng = np.random.default_rng(0)
    with VideoReader(videos[name]) as reader:
        for _ in range(20):
            indices = rng.integers(0, NUM_FRAMES, rng.integers(1, 12))
            assert_frames(reader.read(indices), indices.tolist(), videos[name])
        assert_frames(reader.read(np.arange(NUM_FRAMES)), list(range(NUM_FRAMES)), videos[name])


def test_stream_cut_mid_gop(tmp_path):
    """An MPEG-TS stream cut mid-GOP: frames before the first keyframe do not count."""
    full = write_indexed_video(tmp_path / "full.ts", num_frames=60, gop=GOP)
    cut = tmp_path / "cut.ts"
    cut.write_bytes(full.read_bytes()[188 * 40 :])  # whole 188-byte TS packets, past the first keyframe
    ref = reference(cut)
    assert read_index(ref[0]) > 0
    with VideoReader(cut) as reader:
        assert reader.num_frames == len(ref)
        indices = [len(ref) - 1, 0, 17, 5, 30]
        np.testing.assert_array_equal(reader.read(indices), ref[indices])


def test_read_accepts_numpy_and_empty(videos):
    with VideoReader(videos["h264_25.mp4"]) as reader:
        assert_frames(reader.read(np.array([5, 9], dtype=np.int32)), [5, 9], videos["h264_25.mp4"])
        assert reader.read([]).shape == (0, 64, 96, 3)


def test_skip_and_seek_decode_only_what_is_needed(videos, monkeypatch):
    """Sparse reads seek GOP by GOP and skip unneeded non-reference frames, yet stay exact."""
    path = videos["h264_25.mp4"]
    reader = VideoReader(path)
    impl = reader._impl
    sent: list[str] = []
    decode = impl._decode

    def spy(packet, where):
        sent.append(impl._skip_mode)
        return decode(packet, where)

    monkeypatch.setattr(impl, "_decode", spy)
    assert_frames(reader.read([NUM_FRAMES - 2]), [NUM_FRAMES - 2], path)
    assert len(sent) <= GOP + 1  # one GOP (plus the flush), not the whole file
    sent.clear()
    indices = [1, 26, 51, 70]
    assert_frames(reader.read(indices), indices, path)
    assert "NONREF" in sent and len(sent) < NUM_FRAMES // 2
    reader.close()


def test_untrusted_timestamps_fall_back_to_counting(videos, monkeypatch):
    path = videos["h264_25.mp4"]
    with VideoReader(path) as reader:
        shifted = {pts + 1: i for pts, i in reader._impl._disp_of_pts.items()}
        monkeypatch.setattr(reader._impl, "_disp_of_pts", shifted)
        assert_frames(reader.read([40, 7, 63]), [40, 7, 63], path)
        assert reader._impl._mode == "count"
        assert_frames(reader.read([2, 70]), [2, 70], path)


def test_read_restarts_from_top_when_seeking_fails(videos, monkeypatch):
    path = videos["h264_25.mp4"]
    with VideoReader(path) as reader:
        monkeypatch.setattr(reader._impl, "_try_seek", lambda ts, target: None)
        assert_frames(reader.read([60, 30, 5]), [60, 30, 5], path)


def test_frame_the_decoder_never_returns_raises(videos, monkeypatch):
    path = videos["h264_25.mp4"]
    with VideoReader(path) as reader:
        impl = reader._impl
        lost_pts = impl._pkt_pts[impl._dec_of_disp[30]]
        decode = impl._decode
        monkeypatch.setattr(impl, "_decode", lambda p, w: [f for f in decode(p, w) if f.pts != lost_pts])
        assert_frames(reader.read([29, 31]), [29, 31], path)
        with pytest.raises(VideoDecodeError, match="frame 30 could not be decoded") as info:
            reader.read([10, 30])
        assert info.value.path == str(path)


# --------------------------------------------------------------------------------------------------
# resizing


@pytest.mark.parametrize(
    ("short_side", "size"),
    [(32, (48, 32)), (128, (192, 128)), (64, (96, 64))],
)
def test_short_side(videos, short_side, size):
    path = videos["h264_25.mp4"]
    with VideoReader(path, short_side=short_side) as reader:
        assert (reader.width, reader.height) == size
        indices = [70, 0, 35, 35, 12]
        frames = reader.read(indices)
        assert frames.shape == (len(indices), size[1], size[0], 3)
        assert_frames(frames, indices, path, size if size != (96, 64) else None)


def test_short_side_portrait(tmp_path):
    path = write_indexed_video(tmp_path / "portrait.mp4", num_frames=30, size=(64, 96))
    with VideoReader(path, short_side=32) as reader:
        assert (reader.width, reader.height) == (32, 48)
        frames = reader.read([3, 29])
        assert frames.shape == (2, 48, 32, 3)
        assert [read_index(f) for f in frames] == [3, 29]


@pytest.mark.parametrize("interpolation", ["area", "bicubic", "nearest", "lanczos"])
def test_interpolation(videos, interpolation):
    with VideoReader(videos["h264_25.mp4"], short_side=40, interpolation=interpolation) as reader:
        frames = reader.read([9, 44])
        assert frames.shape == (2, 40, 60, 3)
        assert [read_index(f) for f in frames] == [9, 44]


# --------------------------------------------------------------------------------------------------
# errors


def _assert_fast_open_error(path: Path, *fragments: str) -> None:
    start = time.perf_counter()
    with pytest.raises(VideoDecodeError) as info:
        VideoReader(path)
    assert time.perf_counter() - start < 2.0
    assert info.value.path == str(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path):
    _assert_fast_open_error(tmp_path / "nope.mp4", "no such file")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _assert_fast_open_error(path, "empty")


def test_text_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not the frames you are looking for\n" * 20)
    _assert_fast_open_error(path, "Invalid data")


def test_audio_only_file(tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(8000)
        f.writeframes((np.sin(np.arange(8000) / 5) * 1000).astype("<i2").tobytes())
    _assert_fast_open_error(path, "no video stream")


def _remux_faststart(src: Path, dst: Path) -> Path:
    """Copies an mp4 with its index (moov) before the media data, as web video usually is."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return dst


@pytest.mark.parametrize("keep", [0.5, 0.9, 64])
@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_mp4(tmp_path, keep, faststart):
    """Cut at 50%, 90% or to the first 64 bytes (header only), with the index at the end or the start."""
    src = write_indexed_video(tmp_path / "full.mp4", num_frames=48)
    if faststart:
        src = _remux_faststart(src, tmp_path / "faststart.mp4")
        with VideoReader(src) as reader:  # the remuxed file itself is fine
            assert reader.num_frames == 48
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    _assert_fast_open_error(cut)


def test_truncated_at_packet_boundary(tmp_path):
    """No packet is cut short, but frames the header promises are missing."""
    src = _remux_faststart(write_indexed_video(tmp_path / "full.mp4", num_frames=48), tmp_path / "fs.mp4")
    with av.open(str(src)) as container:
        positions = [p.pos for p in container.demux(video=0) if p.size]
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: positions[30]])
    _assert_fast_open_error(cut, "48 frames", "truncated")


def test_truncated_avi(tmp_path):
    src = write_indexed_video(tmp_path / "full.avi", codec="mpeg4", bframes=2, num_frames=48)
    data = src.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    _assert_fast_open_error(cut)


def test_index_out_of_range(videos):
    path = videos["h264_25.mp4"]
    with VideoReader(path) as reader:
        for bad in ([NUM_FRAMES], [0, -1], [3, 10_000]):
            with pytest.raises(IndexError) as info:
                reader.read(bad)
            assert str(path) in str(info.value) and f"0..{NUM_FRAMES - 1}" in str(info.value)


def test_bad_arguments(videos):
    path = videos["h264_25.mp4"]
    with pytest.raises(ValueError, match="backend"):
        VideoReader(path, backend="opencv")
    with pytest.raises(ValueError, match="short_side"):
        VideoReader(path, short_side=0)
    with pytest.raises(ValueError, match="interpolation"):
        VideoReader(path, interpolation="magic")
    reader = VideoReader(path)
    with pytest.raises(TypeError):
        reader.read([1.5])
    with pytest.raises(ValueError):
        reader.read([[1, 2]])
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read([0])


# --------------------------------------------------------------------------------------------------
# real files


@pytest.mark.parametrize(
    ("name", "num_frames", "fps", "duration"),
    [("test.mp4", 300, 30.0, 10.0), ("demo.mp4", 280, 28.0, 10.0), ("test.avi", 164, 25.0, 6.56)],
)
def test_real_files_match_full_decode(name, num_frames, fps, duration):
    path = MEDIA / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    ref = decode_all(path)  # not cached: these are large
    rng = np.random.default_rng(1)
    with VideoReader(path) as reader:
        assert (reader.num_frames, len(ref)) == (num_frames, num_frames)
        assert reader.fps == pytest.approx(fps)
        assert reader.duration == pytest.approx(duration, abs=1e-3)
        sparse = np.sort(rng.choice(num_frames, 8, replace=False))
        for indices in (sparse, sparse[::-1], [num_frames - 1, 0, num_frames // 2, 0], np.arange(40, 56)):
            np.testing.assert_array_equal(reader.read(indices), ref[np.asarray(indices)])


# --------------------------------------------------------------------------------------------------
# decord backend


def test_decord_missing_gives_install_hint(videos, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` fail
    with pytest.raises(ImportError, match=r"pip install vidlab\[decord\]"):
        VideoReader(videos["h264_25.mp4"], backend="decord")


def test_decord_backend(videos):
    pytest.importorskip("decord")
    path = videos["h264_25.mp4"]
    with VideoReader(path, backend="decord") as reader:
        assert reader.num_frames == NUM_FRAMES
        assert reader.fps == pytest.approx(25)
        indices = [50, 3, 50, 71, 0]
        assert [read_index(f) for f in reader.read(indices)] == indices
        with pytest.raises(IndexError):
            reader.read([NUM_FRAMES])
    with VideoReader(path, backend="decord", short_side=128) as reader:
        frames = reader.read([8, 7])
        assert frames.shape == (2, 128, 192, 3)
        assert [read_index(f) for f in frames] == [8, 7]


def test_decord_errors(tmp_path):
    pytest.importorskip("decord")
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n")
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        VideoReader(path, backend="decord")
