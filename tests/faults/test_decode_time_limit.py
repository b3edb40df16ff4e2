"""A read that never returns is bounded by data.decode_timeout (vidlab.data.timelimit): interrupted and handled like
an undecodable video, or, stuck in native code, the process ends with a line naming the file. Real processes, real
videos, a real data loader."""

import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import REPO
from vidlab.data.timelimit import DecodeTimeout

# A dataset over real videos whose item 1 hangs: "python" sleeps (interruptible), "native" locks a locked mutex in
# C (no signal ends it). The rest is vidlab's own VideoDataset.
HANGING = textwrap.dedent(
    """
    import ctypes, sys, time
    from vidlab.data.datasets import VideoDataset, VideoItem
    from vidlab.data.sampling import SampleFrames

    def hang(how):
        if how == "python":
            time.sleep(3600)
        lock = ctypes.create_string_buffer(64)  # a zeroed pthread_mutex_t: an unlocked default mutex
        libc = ctypes.CDLL(None)
        libc.pthread_mutex_lock(lock)
        libc.pthread_mutex_lock(lock)  # the same thread again: blocks for good, signals or not

    class Hanging(VideoDataset):
        def __init__(self, videos, how, **kw):
            items = [VideoItem(path=str(v), label=[0]) for v in videos]
            super().__init__(items, SampleFrames(clip_len=2, frame_interval=1, num_clips=1), lambda r: r, 1, **kw)
            self.how = how

        def _load(self, idx, rng):
            if idx == 1:
                hang(self.how)
            return super()._load(idx, rng)
    """
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from tests.faults.test_hostile_videos import _write

    d = tmp_path_factory.mktemp("timelimit")
    paths = [d / f"v{i}.mp4" for i in range(3)]
    for p in paths:
        _write(p, n=8)
    return paths


def _dataset(videos, how, **kw):
    namespace: dict = {}
    exec(HANGING, namespace)
    return namespace["Hanging"](videos, how, **kw)


def test_a_read_that_does_not_return_raises_a_decode_timeout_naming_the_file(videos):
    ds = _dataset(videos, "python", decode_timeout=0.5)
    assert ds[0]["imgs"].shape[:2] == (1, 2)
    t0 = time.monotonic()
    with pytest.raises(DecodeTimeout, match=r"v1\.mp4: reading it took longer than 0\.5 s \(data\.decode_timeout\)"):
        ds[1]
    assert time.monotonic() - t0 < 5
    assert ds[2]["imgs"].shape[:2] == (1, 2)  # the limit is disarmed and rearmed per sample


def test_with_on_error_skip_a_timed_out_sample_is_replaced_and_reported(videos):
    out = _dataset(videos, "python", decode_timeout=0.5, on_error="skip")[1]
    assert out["skipped"] == [str(videos[1])] and out["imgs"].shape[:2] == (1, 2)


def test_no_limit_is_armed_with_zero_or_outside_the_main_thread(videos):
    import threading

    from vidlab.data.timelimit import sample_time_limit

    with sample_time_limit(0, "x"):
        time.sleep(0.01)
    seen = []
    t = threading.Thread(target=lambda: seen.append(sample_time_limit(0.01, "x").__enter__() is None))
    t.start()
    t.join()
    assert seen == [True]


def _run(script: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    return r, time.monotonic() - t0


def test_a_read_stuck_in_native_code_ends_the_process_with_a_line_naming_the_file(videos):
    script = HANGING + textwrap.dedent(
        f"""
        import vidlab.data.timelimit as tl
        tl.GRACE = 1.0
        ds = Hanging({[str(v) for v in videos]!r}, "native", decode_timeout=0.5)
        ds[0]
        ds[1]
        print("unreachable")
        """
    )
    r, seconds = _run(script)
    assert r.returncode == 1 and "unreachable" not in r.stdout
    assert f"vidlab: error: {videos[1]}: reading it did not return within 0.5 s" in r.stderr
    assert seconds < 30  # 0.5 s + 1 s grace, plus start-up


@pytest.mark.slow
@pytest.mark.faults
def test_in_a_data_loader_worker_the_stuck_read_is_named_and_the_loader_reports_the_worker(videos):
    script = HANGING + textwrap.dedent(
        f"""
        import vidlab.data.timelimit as tl
        from vidlab.data.loader import DataLoaderError, build_loader
        tl.GRACE = 1.0
        ds = Hanging({[str(v) for v in videos]!r}, "native", decode_timeout=0.5)
        try:
            for batch in build_loader(ds, 1, train=False, num_workers=1, timeout=120):
                pass
        except DataLoaderError as e:
            print("DataLoaderError:", e)
        """
    )
    r, seconds = _run(script)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{videos[1]}: reading it did not return within 0.5 s" in r.stderr  # the worker's last line
    assert "DataLoaderError:" in r.stdout and "worker" in r.stdout
    assert seconds < 60  # long before data.timeout (120 s)
