"""A checkpoint write that fails (full disk, file-size limit) keeps the previous checkpoint and says so in one line."""

import hashlib
import os
import resource
import subprocess
import sys

import torch

from tests.conftest import REPO, write_tiny_recipe


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(synth_tiny, tmp_path, cli_inprocess):
    work = tmp_path / "run"
    common = [str(write_tiny_recipe(synth_tiny, tmp_path / "r.yaml")), "train.max_iters_per_epoch=2",
              "data.num_workers=0", f"work_dir={work}"]  # fmt: skip
    assert cli_inprocess("train", *common, "train.epochs=1").returncode == 0
    first = work / "epoch_1.pth"
    digest, size = _digest(first), first.stat().st_size
    limit = 2**20  # 1 MiB: room for the logs and metrics, not for a 90 MB checkpoint

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past it fail with EFBIG

    res = subprocess.run(
        [sys.executable, "-m", "vidlab", "train", *common, "train.epochs=2", "--resume"],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
        preexec_fn=limited,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert (
        last
        == f"vidlab train: error: [Errno 27] cannot write {work / 'epoch_2.pth'} (File too large); nothing was written"
    )
    assert "Traceback" not in res.stderr
    assert size > limit and _digest(first) == digest  # the previous checkpoint is untouched ...
    assert not (work / "epoch_2.pth").exists() and not list(work.glob(".*.tmp"))  # ... and nothing half-written stays
    assert torch.load(first, weights_only=True)["epoch"] == 1
    resumed = cli_inprocess("train", *common, "train.epochs=2", "--resume")  # room again: the run goes on
    assert resumed.returncode == 0 and "resumed from" in resumed.stderr + resumed.stdout
    assert torch.load(work / "epoch_2.pth", weights_only=True)["epoch"] == 2
