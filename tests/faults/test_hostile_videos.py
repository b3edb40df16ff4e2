"""A corpus of broken and hostile video files, each with its documented outcome (docs/RELIABILITY.md): a
VideoDecodeError naming the file, or frames. Byte-flipped copies of a valid MP4 never crash or hang the reader."""

import fractions
import json
import struct
import subprocess
import sys

import av
import numpy as np
import pytest

from tests.conftest import REPO
from vidlab.data.decode import VideoDecodeError, VideoReader


def _write(path, n=20, fmt=None, codec="libx264", pts=None):
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        if pts is not None:  # variable frame rate: frame times in milliseconds
            s.time_base = s.codec_context.time_base = fractions.Fraction(1, 1000)
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 12 % 256, np.uint8), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], fractions.Fraction(1, 1000)
            c.mux(s.encode(frame))
        c.mux(s.encode())


def _retimed(path, fmt, pts, dts, n=20, **options):
    """``n`` frames of an H.264 stream without B-frames, muxed with the packet timestamps ``pts(i)``, ``dts(i)``."""
    with av.open(str(path), "w", format=fmt, options=options) as c:
        s = c.add_stream("libx264", rate=10, options={"bf": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        packets = []
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 12 % 256, np.uint8), format="rgb24")
            frame.pts = i
            packets += s.encode(frame)
        for i, packet in enumerate(packets + s.encode()):
            packet.pts, packet.dts = pts(i), dts(i)
            c.mux(packet)


def _rotated(path):
    """A frame with a bright top-left corner, stored landscape, with a display matrix saying: turn by 90 degrees."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.set_display_rotation(90)
        image = np.zeros((48, 64, 3), np.uint8)
        image[:16, :16] = 255
        for _ in range(5):
            c.mux(s.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        c.mux(s.encode())


def _declared_size(path, raw_avi: bytes, size: int):
    """The tiny rawvideo AVI with every (64, 48) pair of its headers replaced by ``(size, size)``."""
    path.write_bytes(raw_avi.replace(struct.pack("<ii", 64, 48), struct.pack("<ii", size, size)))


def _raw_avi(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("rawvideo", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "gray"
        for i in range(3):
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64), i * 50, np.uint8), format="gray")))
        c.mux(s.encode())


def _huge_mjpeg(path, side=8200):
    """A real one-frame MJPEG video of side x side pixels (over MAX_PIXELS; a flat frame compresses to 1 MB)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("mjpeg", rate=1)
        s.width = s.height = side
        s.pix_fmt = "yuvj420p"
        frame = av.VideoFrame(side, side, "yuvj420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = 0
        c.mux(s.encode(frame))
        c.mux(s.encode())


def _audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            c.mux(s.encode(frame))
        c.mux(s.encode())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    _write(d / "valid.mp4")
    data = (d / "valid.mp4").read_bytes()
    (d / "zero.mp4").write_bytes(b"")
    for q in (10, 50, 90):
        (d / f"truncated_{q}.mp4").write_bytes(data[: len(data) * q // 100])
    (d / "no_moov.mp4").write_bytes(data[: data.find(b"moov") - 4])
    _write(d / "avi_named.mp4", fmt="avi", codec="mpeg4")
    _write(d / "one_frame.mp4", n=1)
    _write(d / "vfr.mp4", pts=[0, 100, 150, 400, 410, 420, 900, 1000, 1100, 1500, 1510, 1520, 1530, 2000, 2100, 2200,
                               2300, 2400, 2500, 2600])  # fmt: skip
    _audio_only(d / "audio_only.mp4")
    (d / "text.mp4").write_text("not a video\n")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    (d / "folder.mp4").mkdir()
    _rotated(d / "rotated.mp4")
    backwards = (lambda i: 2 * i + 3 * (i % 2), lambda i: 2 * i)  # pts 0, 5, 4, 9, 8, ...: back against decode order
    _retimed(d / "pts_backwards.mkv", "matroska", *backwards)
    _retimed(d / "pts_backwards.mp4", "mp4", *backwards)
    _retimed(d / "negative_ts.mkv", "matroska", lambda i: i - 5, lambda i: i - 5, avoid_negative_ts="disabled")
    _retimed(d / "negative_ts.mp4", "mp4", lambda i: i - 5, lambda i: i - 5, avoid_negative_ts="disabled")
    _retimed(d / "part.ts", "mpegts", lambda i: i, lambda i: i)
    (d / "joined.ts").write_bytes((d / "part.ts").read_bytes() * 2)  # `cat a.ts b.ts`: timestamps restart
    _raw_avi(d / "raw.avi")
    _declared_size(d / "declared_16000.avi", (d / "raw.avi").read_bytes(), 16000)
    _declared_size(d / "declared_16384.avi", (d / "raw.avi").read_bytes(), 16384)
    _huge_mjpeg(d / "real_8200.mkv")
    return d


# file -> (outcome, what the error says); "frames": decoded, with this many frames
OUTCOMES = {
    "zero.mp4": ("error", r"file is empty \(0 bytes\)"),
    "truncated_10.mp4": ("error", "cannot open as a video"),  # the moov atom (at the end) is gone
    "truncated_50.mp4": ("error", "cannot open as a video"),
    "truncated_90.mp4": ("error", "cannot open as a video"),
    "no_moov.mp4": ("error", "cannot open as a video"),
    "avi_named.mp4": ("frames", 20),  # FFmpeg probes the content, not the extension
    "one_frame.mp4": ("frames", 1),
    "vfr.mp4": ("frames", 20),  # every frame, in order; fps is the average rate
    "audio_only.mp4": ("error", "contains no video stream"),
    "text.mp4": ("error", "cannot open as a video"),
    "random.mp4": ("error", "cannot open as a video"),
    "folder.mp4": ("error", "is a directory"),
    # frames as stored: the display matrix is not applied (as decord, MMAction2 and a plain PyAV decode)
    "rotated.mp4": ("sequential", 5),
    # pts that jump back against the decode order: frames in decoder output order, as a plain decode gives them
    "pts_backwards.mkv": ("sequential", 20),
    "pts_backwards.mp4": ("sequential", 20),
    "negative_ts.mkv": ("sequential", 20),
    "negative_ts.mp4": ("sequential", 15),  # MP4's edit list starts at 0: FFmpeg drops the 5 frames before it
    "joined.ts": ("error", r"packet \d+ is incomplete; file truncated or corrupt"),  # broken continuity, says FFmpeg
    "declared_16000.avi": ("error", "declared frame size 16000x16000 exceeds the limit"),
    "declared_16384.avi": ("error", "video stream has no frame size"),  # FFmpeg itself refuses 2**28 pixels
    "real_8200.mkv": ("error", "declared frame size 8200x8200 exceeds the limit"),
}


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_each_bad_file_has_its_documented_outcome(corpus, name):
    kind, expected = OUTCOMES[name]
    if kind == "error":
        with pytest.raises(VideoDecodeError, match=expected) as e:
            reader = VideoReader(corpus / name)
            reader.read(np.arange(reader.num_frames))
        assert name in str(e.value)
    else:
        reader = VideoReader(corpus / name)
        frames = reader.read(np.arange(reader.num_frames))
        assert frames.shape == (expected, 48, 64, 3) and reader.num_frames == expected
        if kind == "sequential":  # exactly what decoding the file from start to end gives, also read out of order
            with av.open(str(corpus / name)) as c:
                plain = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
            np.testing.assert_array_equal(frames, plain)
            order = np.random.default_rng(0).permutation(expected)
            np.testing.assert_array_equal(VideoReader(corpus / name).read(order), plain[order])


def test_a_rotated_video_keeps_its_stored_orientation(corpus):
    frame = VideoReader(corpus / "rotated.mp4").read([0])[0]
    assert frame.shape == (48, 64, 3) and frame[:12, :12].mean() > 200 and frame[-12:, -12:].mean() < 50


def test_oversized_files_are_refused_without_allocating_their_frames(corpus):
    script = (
        "import sys\n"
        "from vidlab.data.decode import VideoDecodeError, VideoReader\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        VideoReader(p)\n"
        "    except VideoDecodeError:\n"
        "        pass\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"  # peak RSS of this process image
        "print(int(status.split()[0]) // 1024)\n"
    )
    files = [str(corpus / n) for n in ("declared_16000.avi", "declared_16384.avi", "real_8200.mkv")]
    r = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) < 400  # MiB: one decoded 16000 x 16000 frame alone would take 1,100


FUZZ = """
import json, sys
import numpy as np
from vidlab.data.decode import VideoDecodeError, VideoReader

data, n, seed = open(sys.argv[1], "rb").read(), int(sys.argv[2]), int(sys.argv[3])
rng, path, counts = np.random.default_rng(seed), sys.argv[4], {"frames": 0, "VideoDecodeError": 0}
for i in range(n):
    buf = bytearray(data)
    for pos in rng.integers(0, len(buf), size=int(rng.integers(1, 20))):
        buf[pos] ^= 1 << int(rng.integers(0, 8))
    open(path, "wb").write(buf)
    try:
        reader = VideoReader(path)
        reader.read(np.arange(reader.num_frames))
        reader.close()
        counts["frames"] += 1
    except VideoDecodeError:
        counts["VideoDecodeError"] += 1
print(json.dumps(counts))
"""


def _fuzz(corpus, n: int, seed: int) -> dict:
    """``n`` copies of valid.mp4 with 1-19 flipped bits each, read in a child process (a crash would end it)."""
    argv = [sys.executable, "-c", FUZZ, str(corpus / "valid.mp4"), str(n), str(seed), str(corpus / f"f{seed}.mp4")]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]  # no crash, no exception other than VideoDecodeError
    counts = json.loads(r.stdout.strip().splitlines()[-1])
    assert sum(counts.values()) == n
    return counts


def test_a_declared_frame_size_over_the_limit_is_refused_before_decoding(corpus, monkeypatch):
    import vidlab.data.decode as decode

    monkeypatch.setattr(decode, "MAX_PIXELS", 64 * 48 - 1)  # valid.mp4 is 64 x 48: one pixel over
    with pytest.raises(VideoDecodeError, match=r"valid.mp4: declared frame size 64x48 exceeds the limit of 3,071"):
        VideoReader(corpus / "valid.mp4")


def test_byte_flipped_copies_never_crash_the_reader(corpus):
    counts = _fuzz(corpus, 50, seed=1)
    assert counts["frames"] > 0  # most flips land in the picture data: decoded, possibly with artefacts


@pytest.mark.slow
@pytest.mark.faults
def test_a_thousand_byte_flipped_copies(corpus):
    counts = _fuzz(corpus, 1000, seed=2)
    print("1,000 byte-flipped copies of a valid MP4:", counts)
