"""Run a suite's jobs: resumable, shardable, one after another or N at a time, locally or through Slurm.

Every job is an ordinary ``vidlab train`` (``--resume auto``: a job killed midway goes on from its newest
``epoch_N.pth``) followed, for the table's jobs, by ``vidlab test`` on the test split, each in its own process with
its output appended to ``<work_dir>/jobs/<job id>/log.txt``. A finished job writes
``<work_dir>/results/<job id>.json`` (atomically); a job with a result is never run again. A job runs under an
exclusive lock on its folder, so processes sharing a file system (shards, ``--jobs N``) never run one job twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from vidlab.config import ConfigError
from vidlab.engine.checkpoint import atomic_write
from vidlab.errors import VidlabError
from vidlab.suites.spec import Job, Suite, shard_jobs

__all__ = ["JobFailed", "JobRunner", "run_suite"]

_RESULT = re.compile(r"^RESULT (.*)$", re.M)
EXECUTORS = ("local", "slurm")


class JobFailed(VidlabError, RuntimeError):
    """A job's command exited with an error; the message names the command and the log."""

    exit_code = 1  # the inputs were valid; the run itself failed


def parse_result_line(text: str) -> dict[str, float]:
    """The ``key=value`` pairs of the last ``RESULT`` line of a vidlab command's output."""
    found = _RESULT.findall(text)
    if not found:
        return {}
    out = {}
    for item in found[-1].split():
        key, _, value = item.partition("=")
        with contextlib.suppress(ValueError):
            out[key] = float(value)
    return out


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes (also when the process dies)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class JobRunner:
    """Runs one job (picklable, so Slurm workers get it whole).

    Args:
        work_dir: the suite's work dir (absolute).
        cwd: the directory relative paths of the suite are relative to.
        pretrain: the suite's upstream jobs by name.
        checkpoint: file name of a run's checkpoint that the next stage uses (``best.pth``).
        nproc: processes per training job (>1: ``torchrun --nproc_per_node``).
        python: the interpreter that runs ``-m vidlab``.
    """

    work_dir: str
    cwd: str
    pretrain: dict[str, Job]
    checkpoint: str = "best.pth"
    nproc: int = 1
    python: str = field(default_factory=lambda: sys.executable)

    def result_path(self, job: Job) -> Path:
        return Path(self.work_dir) / "results" / f"{job.id}.json"

    def job_dir(self, job: Job) -> Path:
        return Path(self.work_dir) / "jobs" / job.id

    def done(self, job: Job) -> dict | None:
        try:
            return json.loads(self.result_path(job).read_text())
        except (OSError, ValueError):
            return None

    def _overrides(self, job: Job) -> list[str]:
        over = list(job.overrides)
        if job.needs is not None:
            ckpt = self.job_dir(self.pretrain[job.needs]) / self.checkpoint
            over.append(f"model.pretrained={json.dumps(str(ckpt))}")
        return over + [f"work_dir={json.dumps(str(self.job_dir(job)))}"]

    def _vidlab(self, distributed: bool = False) -> list[str]:
        if distributed and self.nproc > 1:
            return [self.python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={self.nproc}",
                    "-m", "vidlab"]  # fmt: skip
        return [self.python, "-m", "vidlab"]

    def _call(self, cmd: list[str], log: Path) -> str:
        """Run ``cmd`` in ``cwd`` with its output streamed into ``log`` (follow a job with ``tail -f``); returns the
        output."""
        with open(log, "a") as f:
            f.write(f"\n$ {' '.join(cmd)}\n")
            f.flush()
            start = f.tell()
            code = subprocess.run(cmd, cwd=self.cwd, stdout=f, stderr=subprocess.STDOUT).returncode
        with open(log) as f:
            f.seek(start)
            out = f.read()
        if code != 0:
            tail = "\n".join(out.strip().splitlines()[-8:])
            raise JobFailed(f"`{' '.join(cmd[:5])} ...` exited with {code}; log: {log}\n{tail}")
        return out

    def run(self, job: Job) -> dict:
        """Run ``job`` (its upstream pretraining first) unless it has a result; returns the result record."""
        record = self.done(job)
        if record is not None:
            return record
        if job.needs is not None:
            self.run(self.pretrain[job.needs])
        jdir = self.job_dir(job)
        with _locked(jdir / ".lock"):
            record = self.done(job)  # another process may have finished it while we waited
            if record is not None:
                return record
            start, log, over = time.time(), jdir / "log.txt", self._overrides(job)
            if not (jdir / "train.done").is_file():
                self._call(self._vidlab(True) + ["train", job.config, *over, "--resume", "auto"], log)
                (jdir / "train.done").touch()
            metrics = {}
            if job.kind == "eval":
                ckpt = str(jdir / self.checkpoint)
                out = self._call(
                    self._vidlab() + ["test", job.config, *over, "--checkpoint", ckpt, "--split", "test"], log
                )
                metrics = parse_result_line(out)
                missing = [m for m in job.wanted_metrics() if m not in metrics]
                if missing:
                    raise JobFailed(
                        f"job {job.id}: `vidlab test` reported no {', '.join(map(repr, missing))} "
                        f"(got {sorted(metrics)}); log: {log}"
                    )
            record = {
                **job.to_dict(),
                "metrics": metrics,
                "value": metrics.get(job.metric),
                "minutes": (time.time() - start) / 60,
            }
            atomic_write(self.result_path(job), lambda f: f.write((json.dumps(record, indent=1) + "\n").encode()))
            return record


def _write_description(suite: Suite) -> None:
    """``suite.json`` in the work dir; a work dir that holds another suite's results is refused."""
    path = suite.work_dir / "suite.json"
    desc = suite.describe()
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("fingerprint") != desc["fingerprint"]:
            raise ConfigError(
                f"{suite.work_dir} holds results of a different grid (suite.json fingerprint {old.get('fingerprint')} "
                f"!= {desc['fingerprint']}): use another --work-dir or remove it"
            )
        return
    atomic_write(path, lambda f: f.write((json.dumps(desc, indent=1) + "\n").encode()))


def _prepare(suite: Suite, cwd: str, say: Callable[[str], None]) -> None:
    for cmd in suite.prepare:
        if cmd and cmd[0] == "vidlab":  # the vidlab of this interpreter, whatever is first on PATH
            cmd = [sys.executable, "-m", "vidlab", *cmd[1:]]
        say(f"prepare: {' '.join(cmd)}")
        proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with open(suite.work_dir / "prepare.log", "a") as f:
            f.write(f"\n$ {' '.join(cmd)}\n{proc.stdout}")
        if proc.returncode != 0:
            raise JobFailed(
                f"prepare step `{' '.join(cmd)}` failed ({proc.returncode}); log: {suite.work_dir / 'prepare.log'}"
            )


def _slurm_map(runner: JobRunner, jobs: list[Job], suite: Suite, on_done) -> list[str]:
    try:
        import submitit
    except ImportError as e:
        raise ConfigError("--executor slurm needs submitit: pip install 'vidlab[slurm]'") from e
    params = dict(suite.slurm)
    cluster = params.pop("cluster", None)  # "local" / "debug": submitit's local executors (tests, dry runs)
    executor = submitit.AutoExecutor(folder=str(suite.work_dir / "slurm" / "%j"), cluster=cluster)
    params.setdefault("timeout_min", 60 * 24)
    params.setdefault("name", f"vidlab-{suite.name}")
    executor.update_parameters(**params)
    futures = [(job, executor.submit(runner.run, job)) for job in jobs]
    errors = []
    for job, fut in futures:
        try:
            on_done(job, fut.result(), None)
        except Exception as e:  # a failed Slurm job: submitit re-raises the worker's error
            errors.append(job.id)
            on_done(job, None, e)
    return errors


def _local_map(runner: JobRunner, jobs: list[Job], parallel: int, on_done) -> list[str]:
    errors = []

    def one(job: Job) -> None:
        try:
            on_done(job, runner.run(job), None)
        except JobFailed as e:
            errors.append(job.id)
            on_done(job, None, e)

    if parallel <= 1:
        for job in jobs:
            one(job)
    else:
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(one, jobs))
    return errors


def run_suite(
    suite: Suite,
    shard: tuple[int, int] = (0, 1),
    executor: str = "local",
    parallel: int = 1,
    say: Callable[[str], None] = print,
) -> dict:
    """Run the jobs of ``shard`` that have no result yet (upstream pretraining first); returns
    ``{"done": [...], "failed": [...], "selected": n}``."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {list(EXECUTORS)}, got {executor!r}")
    suite.work_dir.mkdir(parents=True, exist_ok=True)
    _write_description(suite)
    cwd = os.getcwd()
    nproc = int(suite.slurm.get("gpus_per_node", 1)) if executor == "slurm" else 1
    runner = JobRunner(str(suite.work_dir.resolve()), cwd, suite.pretrain, suite.checkpoint, nproc)
    selected = shard_jobs(suite.jobs, shard)
    todo = [j for j in selected if runner.done(j) is None]
    say(
        f"suite {suite.name}: shard {shard[0]}/{shard[1]} has {len(selected)} of {len(suite.jobs)} jobs, "
        f"{len(selected) - len(todo)} already done, {len(todo)} to run ({executor}); work dir {suite.work_dir}"
    )
    if todo:
        _prepare(suite, cwd, say)
    upstream = [suite.pretrain[n] for n in dict.fromkeys(j.needs for j in todo if j.needs)]
    upstream = [j for j in upstream if runner.done(j) is None]
    lock, count = threading.Lock(), [0]
    total = len(upstream) + len(todo)

    def on_done(job: Job, record: dict | None, error: Exception | None) -> None:
        with lock:
            count[0] += 1
            head = f"[{count[0]}/{total}] {job.id}"
            if error is not None:
                say(f"{head} FAILED: {error}")
            elif job.kind == "pretrain":
                say(f"{head} done ({record['minutes']:.1f} min)")
            else:
                values = " ".join(f"{m}={record['metrics'][m]:.4f}" for m in job.wanted_metrics())
                say(f"{head} {values} ({record['minutes']:.1f} min)")

    def run_batch(batch: list[Job]) -> list[str]:
        if executor == "slurm":
            return _slurm_map(runner, batch, suite, on_done)
        return _local_map(runner, batch, parallel, on_done)

    failed = run_batch(upstream)  # upstream runs first, so parallel jobs never wait on one another's pretraining
    blocked = [j for j in todo if j.needs is not None and f"pretrain__{j.needs}" in failed]
    for job in blocked:
        say(f"skipped {job.id}: its pretraining {job.needs} failed")
    failed += run_batch([j for j in todo if j not in blocked]) + [j.id for j in blocked]
    done = [j.id for j in selected if runner.done(j) is not None]
    return {"done": done, "failed": failed, "selected": len(selected)}
