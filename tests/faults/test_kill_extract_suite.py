"""`vidlab extract` and `vidlab suite run` SIGKILLed at random moments and rerun: every file on disk is whole, nothing
finished is recomputed, no temporary file is kept, and the outputs equal an uninterrupted run's.

The default suite kills each once at a chosen point (tests/engine/test_extract.py,
tests/suites/test_suite.py::test_killed_run_resumes); ``pytest -m faults`` runs these random kills
(docs/RELIABILITY.md)."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, write_tiny_recipe

pytestmark = [pytest.mark.slow, pytest.mark.faults]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vidlab", *args], cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def _timed_run(args: list[str]) -> float:
    t0 = time.time()
    proc = _start(args)
    assert proc.wait(timeout=900) == 0
    return time.time() - t0


def _kill_at(args: list[str], seconds: float, ready=lambda: True) -> None:
    """Runs the command and SIGKILLs it and its children ``seconds`` after ``ready()`` first holds (or lets it
    finish first)."""
    proc = _start(args)
    t0 = time.time()
    while not ready() and proc.poll() is None and time.time() - t0 < 600:
        time.sleep(0.005)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _scores(record: dict) -> dict:
    return {k: v for k, v in record["metrics"].items() if k != "minutes"}


def _count(out, at: int) -> bool:
    return at == 0 or len(list(out.rglob("*.npy"))) >= at


def _files(root, pattern: str) -> dict:
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob(pattern)}


def test_extract_killed_at_random_moments(synth_tiny, tmp_path, cli_inprocess):
    from tests.engine.test_extract import _random_checkpoint

    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    ckpt = tmp_path / "random.pth"
    _random_checkpoint(recipe, ckpt)
    common = ["--checkpoint", str(ckpt), "--list", str(synth_tiny / "train.txt"), "--root", str(synth_tiny),
              "--batch-size", "1", "--num-workers", "0"]  # fmt: skip
    reference = tmp_path / "reference"
    duration = _timed_run(["extract", *common, "--out", str(reference)])
    expected = {k: v[0] for k, v in _files(reference, "*.npy").items()}
    index = (reference / "index.csv").read_text()
    rng, done = random.Random(15), []
    for k in range(8):
        out = tmp_path / f"run{k}"
        at = rng.randrange(len(expected))  # once this many files are written (0: while it starts), within 50 ms
        delay = rng.uniform(0, 0.05) if at else rng.uniform(0.5, duration)
        _kill_at(["extract", *common, "--out", str(out)], delay, lambda at=at, out=out: _count(out, at))
        before = _files(out, "*.npy")
        for rel, (data, _) in before.items():  # whole files only, each the uninterrupted run's
            assert data == expected[rel], rel
        r = cli_inprocess("extract", *common, "--out", str(out))
        assert r.returncode == 0, r.stderr
        assert f"{len(before)} already done" in r.stderr or not before
        after = _files(out, "*.npy")
        assert {rel: mtime for rel, (_, mtime) in after.items() if rel in before} == {
            rel: mtime for rel, (_, mtime) in before.items()
        }  # nothing finished was recomputed
        assert set(after) == set(expected)
        for rel in after:
            np.testing.assert_allclose(np.load(out / rel), np.load(reference / rel), rtol=1e-5, atol=1e-6)
        assert (out / "index.csv").read_text() == index
        assert not list(out.rglob("*.tmp")), "a temporary file of a cut-short write was kept"
        done.append(len(before))
    print(f"vidlab extract killed 8 times; files finished before each kill (of {len(expected)}): {done}")
    assert any(0 < n < len(expected) for n in done)  # some kills landed while features were being written


def test_suite_run_killed_at_random_moments(synth_tiny, tmp_path, cli_inprocess):
    from tests.suites.test_suite import SUITE

    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    text = SUITE.format(layout="severe", work_dir="WD", recipe=recipe).replace(
        "train.epochs: 1", "train.epochs: 2, train.max_iters_per_epoch: 2, train.deterministic: true"
    )
    text = text.replace("  b: {config", "  # b: {config")

    def suite(name: str):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text.replace("WD", str(tmp_path / name)))
        return path, tmp_path / name

    path, wd = suite("reference")
    duration = _timed_run(["suite", "run", str(path)])
    expected = {p.name: json.loads(p.read_text()) for p in (wd / "results").glob("*.json")}
    assert len(expected) == 2
    rng, finished = random.Random(15), []
    for k in range(4):
        path, wd = suite(f"run{k}")
        _kill_at(["suite", "run", str(path)], rng.uniform(1.0, duration))
        done = {p.name: p.stat().st_mtime_ns for p in (wd / "results").glob("*.json")} if wd.exists() else {}
        for name in done:  # results are written whole
            json.loads((wd / "results" / name).read_text())
        r = cli_inprocess("suite", "run", str(path))
        assert r.returncode == 0, r.stderr + r.stdout
        assert r.stdout.strip().endswith("RESULT jobs=2/2")
        assert {n: (wd / "results" / n).stat().st_mtime_ns for n in done} == done  # finished jobs not run again
        for name, record in expected.items():
            got = json.loads((wd / "results" / name).read_text())
            assert _scores(got) == _scores(record), name  # deterministic: the same numbers after a resume
        assert not list(wd.rglob("*.tmp")), "a temporary file of a cut-short write was kept"
        finished.append(len(done))
    print(f"vidlab suite run killed 4 times; jobs finished before each kill (of 2): {finished}")
