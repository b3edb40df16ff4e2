"""A corpus of broken and hostile video files, each with its documented outcome (docs/RELIABILITY.md): a
VideoDecodeError naming the file, or frames. Byte-flipped copies of a valid MP4 never crash or hang the reader."""

import fractions
import json
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
