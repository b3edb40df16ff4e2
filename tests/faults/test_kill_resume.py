"""`vidlab train` killed (SIGKILL) at random moments (inside a step, during validation, during a checkpoint write)
and resumed with --resume: no partially written checkpoint is ever loaded, at most one checkpoint interval is lost,
and in deterministic mode the final weights equal an uninterrupted run's bit for bit.

The default suite kills once during a checkpoint write; ``pytest -m faults`` kills at 20 random moments
(docs/RELIABILITY.md)."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO, run_cli, write_tiny_recipe

# 2 epochs of 4 optimizer steps, a mid-epoch checkpoint after every step, validation after each epoch
RUN = ["train.deterministic=true", "train.max_iters_per_epoch=4", "train.epochs=2", "data.num_workers=1",
       "train.checkpoint_every_iters=1"]  # fmt: skip


def _weights(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def _progress(work) -> tuple[int, int]:
    """How far the checkpoints on disk are: (epochs done, steps into the next epoch); each one must load."""
    best = (0, 0)
    for path in [*work.glob("epoch_*.pth"), *work.glob("iter_*.pth")]:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never a partially written file
        best = max(best, (state["epoch"], state.get("partial", {}).get("step", 0)))
    return best


@pytest.fixture(scope="module")
def reference(synth_tiny, tmp_path_factory):
    """An uninterrupted run: (recipe, its final weights, seconds from its start to its last checkpoint)."""
    tmp = tmp_path_factory.mktemp("kill_reference")
    recipe, work = write_tiny_recipe(synth_tiny, tmp / "tiny.yaml"), tmp / "run"
    t0 = time.time()
    r = run_cli("train", str(recipe), *RUN, f"work_dir={work}")
    assert r.returncode == 0, r.stderr
    assert not list(work.glob("iter_*.pth"))  # the last epoch checkpoint replaced the mid-epoch ones
    return recipe, _weights(work / "epoch_2.pth"), (work / "epoch_2.pth").stat().st_mtime - t0


def _kill_and_resume(recipe, work, *, after_s: float | None, cli_inprocess) -> dict:
    """Start `vidlab train`, SIGKILL it ``after_s`` seconds in (None: as soon as a checkpoint write has begun), check
    the files it left, resume it in this process and return what happened."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidlab", "train", str(recipe), *RUN, f"work_dir={work}"], cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 300:
        if after_s is None and list(work.glob(".*.tmp")) or after_s is not None and time.time() - t0 >= after_s:
            break
        time.sleep(0.001)
    mid_write, alive = bool(list(work.glob(".*.tmp"))), proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = _progress(work)  # every checkpoint on disk loads
    r = cli_inprocess("train", str(recipe), *RUN, f"work_dir={work}", "--resume")
    assert r.returncode == 0, r.stderr
    assert not list(work.glob(".*.tmp"))  # a write cut short is removed, not kept
    log, weights = r.stderr + r.stdout, _weights(work / "epoch_2.pth")
    return {"saved": saved, "mid_write": mid_write, "alive": alive, "log": log, "weights": weights}


def _check(outcome: dict, reference_weights: dict) -> None:
    epochs, step = outcome["saved"]
    if (epochs, step) == (0, 0):
        assert "resumed from" not in outcome["log"]  # killed before the first checkpoint: starts over
    elif step:  # resumed from the newest checkpoint: at most one interval (one step) lost
        assert f"at epoch {epochs + 1}, step {step}" in outcome["log"]
    else:
        assert f"at epoch {epochs}" in outcome["log"]
    for key, value in reference_weights.items():
        assert torch.equal(value, outcome["weights"][key]), key


def test_killed_during_a_checkpoint_write(reference, tmp_path, cli_inprocess):
    recipe, ref_weights, _ = reference
    outcome = _kill_and_resume(recipe, tmp_path / "write", after_s=None, cli_inprocess=cli_inprocess)
    assert outcome["mid_write"] and outcome["alive"]  # the kill did land inside a checkpoint write
    _check(outcome, ref_weights)


@pytest.mark.slow
@pytest.mark.faults
def test_twenty_kills_at_random_moments(reference, tmp_path, cli_inprocess):
    recipe, ref_weights, seconds = reference
    rng = random.Random(0)
    moments = sorted(rng.uniform(0.1, 0.9) * seconds for _ in range(20))  # the run's start-up included
    outcomes = []
    for i, moment in enumerate(moments):
        outcome = _kill_and_resume(recipe, tmp_path / f"run{i}", after_s=moment, cli_inprocess=cli_inprocess)
        _check(outcome, ref_weights)
        outcomes.append((round(moment, 2), outcome["saved"], outcome["mid_write"], outcome["alive"]))
    print(
        f"uninterrupted run: last checkpoint after {seconds:.1f} s; kill moment (s), checkpoints on disk (epochs, "
        f"steps), inside a write, still running when killed: {outcomes}"
    )
    assert sum(o[3] for o in outcomes) >= 18  # the kills landed in running trainings
