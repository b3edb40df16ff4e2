"""A suite file: a grid of ordinary vidlab recipes (method x dataset x protocol x seed), read and expanded into jobs.

The file (YAML; every key is described in docs/SUITES.md)::

    suite: mini_severe                 # name, printed above the table
    layout: severe                     # severe: columns grouped by SEVERE's four axes; plain: one column per dataset
    work_dir: work_dirs/suites/mini_severe
    prepare:                           # commands run once before the jobs (idempotent: e.g. `vidlab data synth`)
      - vidlab data synth --variant repetition --out data/mini_severe/rep
    defaults: {train.threads: 2}       # overrides of every job
    pretrain:                          # upstream runs whose best.pth some methods start from
      videomae: {config: configs/pretrain/x.yaml, overrides: {train.epochs: 5}}
    methods:                           # the table's rows
      scratch: {}
      videomae: {pretrain: videomae}   # -> model.pretrained=<that run's best.pth>
      tclr: {checkpoint: ckpts/tclr_vidlab.pth}
    datasets:                          # the table's columns
      ucf: {config: configs/x.yaml, axis: domain, metric: top1, label: UCF, overrides: {...}}
      ava: {config: configs/y.yaml, metrics: [mAP, f1_macro]}   # one job, a column per metric of its RESULT line
    protocols:                         # each dataset runs under each protocol (or its own `protocols: [...]` list)
      finetune: {}
      linear: {model.freeze: backbone}
    seeds: [0]

A job's overrides are applied in this order: ``defaults``, the dataset's, the protocol's, the method's, then
``train.seed`` and ``work_dir``. Relative paths (configs, checkpoints, work_dir) are relative to the directory the
suite runs from, like ``vidlab train``'s.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vidlab.config import ConfigError

__all__ = ["AXES", "Job", "Suite", "load_suite", "parse_shard", "shard_jobs"]

#: SEVERE's four axes, in its table's order (a dataset's ``axis``); others are accepted and shown after these
AXES = ("domain", "samples", "granularity", "task")
LAYOUTS = ("severe", "plain")
_TOP_KEYS = {
    "suite", "layout", "work_dir", "prepare", "defaults", "pretrain", "methods", "datasets", "protocols", "seeds",
    "slurm", "checkpoint",
}  # fmt: skip
_DATASET_KEYS = {"config", "overrides", "axis", "metric", "metrics", "label", "protocols", "lower_is_better"}
_METHOD_KEYS = {"overrides", "pretrain", "checkpoint", "label"}
_PRETRAIN_KEYS = {"config", "overrides"}
#: metrics where lower is better (their rank in the table is inverted)
LOWER_IS_BETTER = {"mae", "mse", "mae_norm", "loss"}


@dataclass
class Job:
    """One run: ``vidlab train CONFIG OVERRIDES`` (then ``vidlab test`` for the table's jobs).

    ``kind`` is ``eval`` (a cell of the table) or ``pretrain`` (an upstream run); ``needs`` names the pretrain
    job whose ``best.pth`` this one starts from. ``metrics`` lists every metric the job's columns read when its
    dataset gives several (``metric`` is the first); it is empty for a one-metric job and then left out of
    :meth:`to_dict`, so the fingerprints of one-metric grids are what they were before the key existed.
    """

    id: str
    kind: str
    config: str
    overrides: list[str]
    method: str = ""
    dataset: str = ""
    protocol: str = ""
    seed: int = 0
    metric: str = ""
    needs: str | None = None
    metrics: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["metrics"]:
            del d["metrics"]
        return d

    def wanted_metrics(self) -> list[str]:
        """The metrics the job's ``RESULT`` line must carry."""
        return self.metrics or [self.metric]


@dataclass
class Suite:
    """A loaded suite: its settings and the jobs of its grid (``jobs``) and upstream runs (``pretrain``)."""

    name: str
    layout: str
    work_dir: Path
    prepare: list[list[str]]
    jobs: list[Job]
    pretrain: dict[str, Job]
    # per dataset x protocol (x metric for a dataset with `metrics`): {key, dataset, protocol, axis, metric, label,
    # lower_is_better}
    columns: list[dict]
    rows: list[dict]  # per method: {method, label}
    slurm: dict = field(default_factory=dict)
    checkpoint: str = "best.pth"
    source: str = ""

    def describe(self) -> dict:
        """What ``suite.json`` records: enough for ``vidlab suite report`` to build the table from result files."""
        grid = {
            "suite": self.name,
            "layout": self.layout,
            "columns": self.columns,
            "rows": self.rows,
            "jobs": [j.to_dict() for j in self.jobs],
        }
        grid["fingerprint"] = hashlib.sha256(json.dumps(grid, sort_keys=True).encode()).hexdigest()[:16]
        return grid


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _check_keys(value: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _as_yaml(value: Any) -> str:
    """``value`` as JSON text that YAML reads back as the same value: PyYAML (YAML 1.1) reads a float only with a
    dot in its mantissa, so JSON's ``1e-05`` is written ``1.0e-05`` (else it would come back a string)."""
    if isinstance(value, float):
        text = json.dumps(value)
        mantissa, e, exponent = text.partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_as_yaml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_as_yaml(v) for v in value) + "]"
    return json.dumps(value)


def _overrides(value: Any, where: str) -> list[str]:
    """``{key: value}`` -> ``["key=<value as JSON, which YAML reads back>"]``."""
    return [f"{k}={_as_yaml(v)}" for k, v in _mapping(value, where).items()]


def _config_path(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.config must be the path of a vidlab recipe")
    if not Path(value).is_file():
        raise ConfigError(f"{where}.config: {value} does not exist (paths are relative to the directory you run in)")
    return value


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read suite file {path}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    _check_keys(data, _TOP_KEYS, str(path))
    for key in ("methods", "datasets"):
        if not _mapping(data.get(key), f"{path}: {key}"):
            raise ConfigError(f"{path}: `{key}` must list at least one entry")
    layout = data.get("layout", "plain")
    if layout not in LAYOUTS:
        raise ConfigError(f"{path}: layout must be one of {list(LAYOUTS)}, got {layout!r}")
    return data


def _pretrain_jobs(data: dict, where: str, defaults: list[str]) -> dict[str, Job]:
    out = {}
    for name, spec in _mapping(data.get("pretrain"), f"{where}: pretrain").items():
        spec = _mapping(spec, f"{where}: pretrain.{name}")
        _check_keys(spec, _PRETRAIN_KEYS, f"{where}: pretrain.{name}")
        cfg = _config_path(spec.get("config"), f"{where}: pretrain.{name}")
        overrides = defaults + _overrides(spec.get("overrides"), f"{where}: pretrain.{name}.overrides")
        out[name] = Job(id=f"pretrain__{name}", kind="pretrain", config=cfg, overrides=overrides, method=name)
    return out


def _method_overrides(name: str, spec: dict, where: str, pretrain: dict[str, Job]) -> tuple[list[str], str | None]:
    _check_keys(spec, _METHOD_KEYS, f"{where}: methods.{name}")
    overrides = _overrides(spec.get("overrides"), f"{where}: methods.{name}.overrides")
    needs = spec.get("pretrain")
    if needs is not None and needs not in pretrain:
        raise ConfigError(f"{where}: methods.{name}.pretrain {needs!r} is not under `pretrain` ({sorted(pretrain)})")
    if needs is not None and spec.get("checkpoint"):
        raise ConfigError(f"{where}: methods.{name}: give `pretrain` or `checkpoint`, not both")
    if spec.get("checkpoint"):
        overrides.append(f"model.pretrained={json.dumps(str(spec['checkpoint']))}")
    return overrides, needs


def _dataset_metrics(spec: dict, where: str) -> list[str] | None:
    """A dataset's ``metrics`` list (several columns from one job), or None where it gives one ``metric``."""
    if "metrics" not in spec:
        return None
    metrics = spec["metrics"]
    if "metric" in spec:
        raise ConfigError(f"{where}: give `metric` or `metrics`, not both")
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ConfigError(f"{where}.metrics must be a non-empty list of RESULT-line keys, got {metrics!r}")
    if len(set(metrics)) != len(metrics):
        raise ConfigError(f"{where}.metrics lists a metric twice: {metrics!r}")
    return metrics


def _columns(data: dict, where: str, protocols: dict) -> list[dict]:
    """The table's columns: one per dataset x protocol, or per dataset x protocol x metric for a dataset with
    ``metrics`` (its columns share one job; their keys end in ``__<metric>``)."""
    cols = []
    for name, spec in data["datasets"].items():
        spec = _mapping(spec, f"{where}: datasets.{name}")
        _check_keys(spec, _DATASET_KEYS, f"{where}: datasets.{name}")
        _config_path(spec.get("config"), f"{where}: datasets.{name}")
        several = _dataset_metrics(spec, f"{where}: datasets.{name}")
        chosen = spec.get("protocols") or list(protocols)
        for proto in chosen:
            if proto not in protocols:
                raise ConfigError(f"{where}: datasets.{name}.protocols: {proto!r} is not under `protocols`")
            label = str(spec.get("label", name)) + (f" ({proto})" if len(protocols) > 1 else "")
            axis = str(spec.get("axis", ""))
            for metric in several or [str(spec.get("metric", "top1"))]:
                lower = bool(spec.get("lower_is_better", metric in LOWER_IS_BETTER))
                key = f"{name}__{proto}" + (f"__{metric}" if several else "")
                cols.append({"key": key, "dataset": name, "protocol": proto, "axis": axis,
                             "metric": metric, "label": label, "lower_is_better": lower})  # fmt: skip
    return cols


def load_suite(path: str | Path, work_dir: str | Path | None = None) -> Suite:
    """Read a suite file and expand its grid (``work_dir`` replaces the file's)."""
    path = Path(path)
    data = _read(path)
    where = str(path)
    defaults = _overrides(data.get("defaults"), f"{where}: defaults")
    pretrain = _pretrain_jobs(data, where, defaults)
    protocols = {
        k: _overrides(v, f"{where}: protocols.{k}") for k, v in (data.get("protocols") or {"default": {}}).items()
    }
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{where}: seeds must be a non-empty list of integers, got {seeds!r}")
    columns = _columns(data, where, protocols)
    wd = Path(work_dir or data.get("work_dir") or f"work_dirs/suites/{data.get('suite', path.stem)}")
    jobs, rows = [], []
    for method, mspec in data["methods"].items():
        mspec = _mapping(mspec, f"{where}: methods.{method}")
        m_over, needs = _method_overrides(method, mspec, where, pretrain)
        rows.append({"method": method, "label": str(mspec.get("label", method))})
        cells: dict[tuple[str, str], list[str]] = {}  # dataset x protocol -> the metrics of its columns
        for col in columns:
            cells.setdefault((col["dataset"], col["protocol"]), []).append(col["metric"])
        for (dataset, proto), metrics in cells.items():
            dspec = data["datasets"][dataset]
            d_over = _overrides(dspec.get("overrides"), f"{where}: datasets.{dataset}.overrides")
            several = metrics if "metrics" in dspec else []
            for seed in seeds:
                jid = f"{method}__{dataset}__{proto}__s{seed}"
                over = defaults + d_over + protocols[proto] + m_over + [f"train.seed={seed}"]
                jobs.append(Job(jid, "eval", dspec["config"], over, method, dataset, proto, seed, metrics[0], needs,
                                several))  # fmt: skip
    prepare = [shlex.split(c) if isinstance(c, str) else [str(x) for x in c] for c in data.get("prepare") or []]
    return Suite(
        name=str(data.get("suite", path.stem)),
        layout=data.get("layout", "plain"),
        work_dir=wd,
        prepare=prepare,
        jobs=jobs,
        pretrain=pretrain,
        columns=columns,
        rows=rows,
        slurm=_mapping(data.get("slurm"), f"{where}: slurm"),
        checkpoint=str(data.get("checkpoint", "best.pth")),
        source=str(path),
    )


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> ``(i, n)``; None -> ``(0, 1)``."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must be i/n with integers, e.g. 0/2, got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def shard_jobs(jobs: list[Job], shard: tuple[int, int]) -> list[Job]:
    """The jobs of shard ``(i, n)``: every n-th job of the grid from the i-th, so shards are disjoint, cover the
    grid, and do not depend on the machine or the order the shards run in."""
    i, n = shard
    return [job for k, job in enumerate(jobs) if k % n == i]
