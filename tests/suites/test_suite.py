"""Suites: grid expansion, sharding, result tables, and real runs (kill + resume, two shards merged, submitit)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, write_tiny_recipe
from vidlab.config import ConfigError
from vidlab.suites import collect, load_suite, parse_shard, shard_jobs, suite_table

SUITE = """
suite: tiny
layout: {layout}
work_dir: {work_dir}
defaults: {{train.epochs: 1, data.num_workers: 0}}
methods:
  scratch: {{}}
  lowlr: {{overrides: {{optim.lr: 0.001}}, label: low lr}}
datasets:
  a: {{config: {recipe}, axis: task, metric: top1, label: A}}
  b: {{config: {recipe}, axis: domain, metric: mean_class_acc, label: B, overrides: {{data.short_side: 36}}}}
seeds: [0]
"""


def _suite_file(tmp_path: Path, recipe: Path, layout: str = "severe", **extra: str) -> Path:
    path = tmp_path / "suite.yaml"
    text = SUITE.format(layout=layout, work_dir=tmp_path / "wd", recipe=recipe)
    for key, value in extra.items():
        text += f"{key}: {value}\n"
    path.write_text(text)
    return path


@pytest.fixture()
def recipe(tmp_path) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: tsn_r18}\n")
    return path


def test_grid_order_and_overrides(tmp_path, recipe):
    suite = load_suite(_suite_file(tmp_path, recipe))
    assert [j.id for j in suite.jobs] == ["scratch__a__default__s0", "scratch__b__default__s0",
                                          "lowlr__a__default__s0", "lowlr__b__default__s0"]  # fmt: skip
    job = suite.jobs[3]
    # defaults, then the dataset's, the protocol's (none), the method's, the seed
    assert job.overrides == ['train.epochs=1', 'data.num_workers=0', 'data.short_side=36', 'optim.lr=0.001',
                             'train.seed=0']  # fmt: skip
    assert job.metric == "mean_class_acc" and job.kind == "eval" and job.needs is None
    assert [c["label"] for c in suite.columns] == ["A", "B"]


def test_protocols_seeds_and_pretrain(tmp_path, recipe):
    path = _suite_file(tmp_path, recipe, layout="plain")
    text = path.read_text().replace("  scratch: {}", "  scratch: {}\n  mae: {pretrain: up}")
    text += f"pretrain:\n  up: {{config: {recipe}, overrides: {{train.epochs: 3}}}}\n"
    text += "protocols: {finetune: {}, linear: {model.freeze: backbone}}\n"
    path.write_text(text.replace("seeds: [0]", "seeds: [0, 1]"))
    suite = load_suite(path)
    assert len(suite.jobs) == 3 * 2 * 2 * 2
    mae = [j for j in suite.jobs if j.method == "mae"]
    assert all(j.needs == "up" for j in mae)
    linear = next(j for j in mae if j.protocol == "linear" and j.seed == 1)
    assert 'model.freeze="backbone"' in linear.overrides and linear.overrides[-1] == "train.seed=1"
    assert suite.pretrain["up"].overrides[-1] == "train.epochs=3" and suite.pretrain["up"].kind == "pretrain"
    assert [c["label"] for c in suite.columns] == ["A (finetune)", "A (linear)", "B (finetune)", "B (linear)"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("methods:", "methods:\n  x: {pretrain: nope}"), "pretrain 'nope' is not under `pretrain`"),
        (("axis: task", "axis: task, colour: red"), "unknown key(s) ['colour']"),
        (("layout: severe", "layout: fancy"), "layout must be one of"),
        (("seeds: [0]", "seeds: 0"), "seeds must be a non-empty list"),
        (("suite: tiny", "suite: tiny\nshards: 2"), "unknown key(s) ['shards']"),
    ],
)
def test_bad_suite_files_name_the_key(tmp_path, recipe, edit, message):
    path = _suite_file(tmp_path, recipe)
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_suite(path)


def test_override_values_come_back_as_written(tmp_path, recipe):
    """Overrides pass through YAML: floats in exponent notation stay floats (PyYAML needs 1.0e-05, not 1e-05)."""
    from vidlab.config import load_config

    path = _suite_file(tmp_path, recipe)
    over = "overrides: {optim.weight_decay: 1.0e-5, optim.lr: 2.5e-4, optim.milestones: [20, 30], "
    over += "model.kwargs: {a: 1.0e-7}}"
    path.write_text(path.read_text().replace("overrides: {optim.lr: 0.001}", over))
    job = load_suite(path).jobs[2]
    assert "optim.weight_decay=1.0e-05" in job.overrides
    cfg = load_config(recipe, job.overrides)
    assert (cfg.optim.weight_decay, cfg.optim.lr, cfg.optim.milestones) == (1e-5, 2.5e-4, [20, 30])
    assert cfg.model.kwargs == {"a": 1e-7}


def test_missing_config_is_named(tmp_path):
    path = _suite_file(tmp_path, tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"datasets.a.config: .*absent.yaml does not exist"):
        load_suite(path)


def test_shards_partition_the_grid():
    jobs = list(range(11))
    parts = [shard_jobs(jobs, (i, 3)) for i in range(3)]
    assert sorted(sum(parts, [])) == jobs and parts[1] == [1, 4, 7, 10]
    assert parse_shard("1/3") == (1, 3) and parse_shard(None) == (0, 1)
    for bad in ("3/3", "a/b", "1", "-1/2"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def _fake_results(wd: Path, suite, values: dict[str, float]) -> None:
    """Result files as `vidlab suite run` writes them (a finished job's record)."""
    from vidlab.suites.runner import _write_description

    suite.work_dir = wd
    wd.mkdir(parents=True, exist_ok=True)
    _write_description(suite)
    (wd / "results").mkdir(exist_ok=True)
    for job in suite.jobs:
        if job.id in values:
            rec = {**job.to_dict(), "metrics": {job.metric: values[job.id]}, "value": values[job.id], "minutes": 0.5}
            (wd / "results" / f"{job.id}.json").write_text(json.dumps(rec))


def test_table_ranks_and_merge(tmp_path, recipe):
    suite = load_suite(_suite_file(tmp_path, recipe))
    ids = [j.id for j in suite.jobs]
    vals = dict(zip(ids, [0.5, 0.25, 0.75, 0.25]))
    _fake_results(tmp_path / "s0", suite, {k: v for k, v in vals.items() if ids.index(k) % 2 == 0})
    _fake_results(tmp_path / "s1", suite, {k: v for k, v in vals.items() if ids.index(k) % 2 == 1})
    desc, records = collect([tmp_path / "s0", tmp_path / "s1"])
    table = suite_table(desc, records)
    # SEVERE layout: the domain axis before the task axis, percentages, mean rank (ties share the better rank)
    assert table["header"] == ["Method", "Domain: B (mean_class_acc)", "Task: A (top1)", "Mean rank"]
    assert table["rows"] == [["scratch", "25.0", "50.0", "1.50"], ["low lr", "25.0", "75.0", "1.00"]]
    assert (table["done"], table["total"]) == (4, 4)
    half = suite_table(*collect([tmp_path / "s0"]))
    assert half["done"] == 2 and half["rows"][0][1] == "-"


def test_report_refuses_mixed_grids(tmp_path, recipe):
    suite = load_suite(_suite_file(tmp_path, recipe))
    _fake_results(tmp_path / "s0", suite, {})
    other = load_suite(_suite_file(tmp_path, recipe, layout="plain"))
    _fake_results(tmp_path / "s1", other, {})
    with pytest.raises(ConfigError, match="different grid"):
        collect([tmp_path / "s0", tmp_path / "s1"])
    with pytest.raises(ConfigError, match="no suite.json"):
        collect([tmp_path])


def test_report_cli_writes_files(tmp_path, recipe, cli_inprocess):
    suite = load_suite(_suite_file(tmp_path, recipe))
    _fake_results(tmp_path / "s0", suite, {suite.jobs[0].id: 0.5})
    proc = cli_inprocess("suite", "report", str(tmp_path / "s0"), "--out", str(tmp_path / "out" / "t"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "RESULT jobs=1/4"
    for name in ("t.md", "t.csv", "t_jobs.csv", "t.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert "| scratch | -" in (tmp_path / "out" / "t.md").read_text().replace("  ", " ")


def test_several_metrics_of_one_job_make_several_columns(tmp_path, recipe):
    """A dataset with ``metrics`` (MicroG-4M's mAP / F1 / recall / AUROC) runs one job per cell and reads each
    column's value from that job's RESULT metrics; one-metric jobs keep the record they always had."""
    from vidlab.suites import write_report

    path = _suite_file(tmp_path, recipe, layout="plain")
    path.write_text(path.read_text().replace("metric: top1, label: A", "metrics: [mAP, f1_macro], label: A"))
    suite = load_suite(path)
    assert [j.id for j in suite.jobs] == ["scratch__a__default__s0", "scratch__b__default__s0",
                                          "lowlr__a__default__s0", "lowlr__b__default__s0"]  # fmt: skip
    a, b = suite.jobs[:2]
    assert (a.metric, a.metrics, a.wanted_metrics()) == ("mAP", ["mAP", "f1_macro"], ["mAP", "f1_macro"])
    assert b.wanted_metrics() == ["mean_class_acc"] and "metrics" not in b.to_dict()  # one-metric grids: as before
    assert [c["key"] for c in suite.columns] == ["a__default__mAP", "a__default__f1_macro", "b__default"]
    wd = tmp_path / "wd"
    _fake_results(wd, suite, {})
    results = {
        "scratch__a__default__s0": {"mAP": 0.5, "f1_macro": 0.25},
        "lowlr__b__default__s0": {"mean_class_acc": 0.1},
    }
    for job in suite.jobs:
        if job.id in results:
            m = results[job.id]
            rec = {**job.to_dict(), "metrics": {**m, "minutes": 1.0}, "value": m[job.metric], "minutes": 0.5}
            (wd / "results" / f"{job.id}.json").write_text(json.dumps(rec))
    table = suite_table(*collect([wd]))
    assert table["header"] == ["Method", "A (mAP)", "A (f1_macro)", "B (mean_class_acc)"]
    assert table["rows"] == [["scratch", "50.0", "25.0", "-"], ["low lr", "-", "-", "10.0"]]
    write_report([wd])
    lines = (wd / "report_jobs.csv").read_text().splitlines()
    assert lines[1:] == ["scratch__a__default__s0,scratch,a,default,0,mAP,0.5,0.50",
                         "scratch__a__default__s0,scratch,a,default,0,f1_macro,0.25,0.50",
                         "lowlr__b__default__s0,lowlr,b,default,0,mean_class_acc,0.1,0.50"]  # fmt: skip


def test_job_with_several_metrics_needs_them_all(tmp_path, recipe, monkeypatch):
    from vidlab.suites import JobFailed, JobRunner

    path = _suite_file(tmp_path, recipe, layout="plain")
    path.write_text(path.read_text().replace("metric: top1, label: A", "metrics: [mAP, f1_macro], label: A"))
    suite = load_suite(path)
    runner = JobRunner(str(tmp_path / "wd"), str(tmp_path), suite.pretrain)
    output = {"text": "RESULT mAP=0.5000 minutes=0.01\n"}
    monkeypatch.setattr(JobRunner, "_call", lambda self, cmd, log: output["text"])
    with pytest.raises(JobFailed, match="reported no 'f1_macro'"):
        runner.run(suite.jobs[0])
    output["text"] = "RESULT mAP=0.5000 f1_macro=0.2500 minutes=0.01\n"
    record = runner.run(suite.jobs[0])
    assert record["value"] == 0.5 and record["metrics"]["f1_macro"] == 0.25


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("metric: top1, metrics: [mAP]", "give `metric` or `metrics`, not both"),
        ("metrics: []", "metrics must be a non-empty list"),
        ("metrics: [mAP, mAP]", "lists a metric twice"),
    ],
)
def test_bad_metrics_lists_are_named(tmp_path, recipe, edit, message):
    path = _suite_file(tmp_path, recipe)
    path.write_text(path.read_text().replace("metric: top1", edit))
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_suite(path)


# ---------------------------------------------------------------------------------------------------------------
# Real runs: `vidlab train` / `vidlab test` subprocesses on tiny SynthActions videos
# ---------------------------------------------------------------------------------------------------------------


def _table(wd: Path) -> list[list[str]]:
    return suite_table(*collect([wd]))["rows"]


def _run_suite(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return run_cli("suite", "run", *args, timeout=timeout)


def _tiny_suite(tmp_path: Path, synth_tiny: Path) -> Path:
    """Two jobs (two methods, one dataset) of one short epoch each, the second shard through submitit locally."""
    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    path = _suite_file(tmp_path, recipe)
    text = path.read_text().replace("train.epochs: 1", "train.epochs: 1, train.max_iters_per_epoch: 2")
    text = text.replace("  b: {config", "  # b: {config")
    path.write_text(text + "slurm: {cluster: local, timeout_min: 10}\n")
    return path


@pytest.mark.slow  # about a minute: four real training runs
def test_shards_merge_resume_and_submitit(tmp_path, synth_tiny):
    path = _tiny_suite(tmp_path, synth_tiny)
    a, b = tmp_path / "a", tmp_path / "b"
    out = _run_suite(str(path), "--shard", "0/2", "--work-dir", str(a))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "RESULT jobs=1/2"
    out = _run_suite(str(path), "--shard", "1/2", "--work-dir", str(b), "--executor", "slurm")
    assert out.returncode == 0, out.stdout + out.stderr
    assert list((b / "slurm").iterdir()), "submitit wrote no job folder"
    merged = run_cli("suite", "report", str(a), str(b))
    assert merged.stdout.strip().splitlines()[-1] == "RESULT jobs=2/2"
    two_shards = suite_table(*collect([a, b]))["rows"]
    # the whole grid in one shard, in the first shard's dir: its finished job is not run again
    stamp = (a / "results" / "scratch__a__default__s0.json").stat().st_mtime_ns
    out = _run_suite(str(path), "--work-dir", str(a))
    assert "1 already done, 1 to run" in out.stdout and out.stdout.strip().endswith("RESULT jobs=2/2")
    assert (a / "results" / "scratch__a__default__s0.json").stat().st_mtime_ns == stamp
    assert _table(a) == two_shards  # seeded runs: the same numbers wherever a job ran


@pytest.mark.slow
def test_killed_run_resumes(tmp_path, synth_tiny):
    path = _tiny_suite(tmp_path, synth_tiny)
    path.write_text(path.read_text().replace("train.epochs: 1", "train.epochs: 3"))
    wd = tmp_path / "wd"
    cmd = [sys.executable, "-m", "vidlab", "suite", "run", str(path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    second = wd / "jobs" / "lowlr__a__default__s0" / "epoch_1.pth"
    deadline = time.time() + 300
    while not second.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert second.exists(), "the second job never wrote its first epoch"
    os.killpg(proc.pid, signal.SIGKILL)  # the suite runner and its training process
    proc.wait()
    first = wd / "results" / "scratch__a__default__s0.json"
    stamp = first.stat().st_mtime_ns
    assert not (wd / "results" / "lowlr__a__default__s0.json").exists()
    out = _run_suite(str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 already done, 1 to run" in out.stdout and out.stdout.strip().endswith("RESULT jobs=2/2")
    assert first.stat().st_mtime_ns == stamp
    log = (wd / "jobs" / "lowlr__a__default__s0" / "log.txt").read_text()
    attempts = [line for line in log.splitlines() if line.startswith("$ ") and " train " in line]
    assert len(attempts) == 2 and "resumed from" in log  # the killed job went on from its checkpoint
