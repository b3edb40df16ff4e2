"""A DDP rank killed mid-epoch: the run stops (non-zero exit) within 60 s, nothing hangs, the checkpoints on disk load
and resume in a single process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, write_tiny_recipe
from tests.helpers import child_pids

pytestmark = [pytest.mark.dist, pytest.mark.slow, pytest.mark.faults]


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (FileNotFoundError, PermissionError):
        return None
    ranks = [int(e.split(b"=")[1]) for e in env if e.startswith(b"RANK=")]
    return ranks[0] if ranks else None


def test_a_killed_rank_stops_the_run_within_60_s(synth_tiny, tmp_path, cli_inprocess):
    recipe, work = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml"), tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "vidlab",
           "train", str(recipe), f"work_dir={work}", "train.epochs=50", "train.max_iters_per_epoch=null",
           "data.num_workers=0"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while not (work / "epoch_1.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stdout.read()
    time.sleep(0.5)  # inside epoch 2
    ranks = {_rank_of(p): p for p in child_pids(proc.pid, recursive=True)}
    os.kill(ranks[1], signal.SIGKILL)
    t0 = time.time()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        pytest.fail("the run still ran 60 s after rank 1 was killed")
    stopped = time.time() - t0
    output = proc.stdout.read()
    assert proc.returncode != 0, output
    assert all(not Path(f"/proc/{p}").exists() or "zombie" in Path(f"/proc/{p}/status").read_text()
               for p in ranks.values())  # fmt: skip
    done = max(torch.load(p, map_location="cpu", weights_only=True)["epoch"] for p in work.glob("epoch_*.pth"))
    r = cli_inprocess("train", str(recipe), f"work_dir={work}", f"train.epochs={done + 1}", "data.num_workers=0",
                      "--resume")  # fmt: skip
    assert r.returncode == 0 and "resumed from" in r.stderr + r.stdout, r.stderr
    print(f"rank 1 killed; torchrun exited with {proc.returncode} after {stopped:.1f} s")  # after the capture above
