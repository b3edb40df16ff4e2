"""The result table of a suite, from the result files of one or more work dirs (shards run anywhere).

Rows are the suite's methods, columns its datasets (x protocols; x metrics for a dataset that lists several, all
read from one job's result). A cell is the mean over seeds (``mean ± std`` with several seeds); percentages for
accuracies, mAP, off-by-one accuracy, MicroG-4M's F1 / recall / AUROC. The SEVERE layout orders the columns by
SEVERE's four axes (domain shift, sample sizes, action granularity, task shift) and adds each method's mean rank
over the columns, as SEVERE's paper does. Written as Markdown, CSV (wide table and one line per job) and a PNG chart.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from vidlab.config import ConfigError
from vidlab.suites.spec import AXES

__all__ = ["collect", "format_table", "suite_table", "write_report"]

PERCENT = {"top1", "top5", "mean_class_acc", "paired_top1", "mAP", "obo", "frame_mAP", "f1", "recall", "auroc"}
PERCENT |= {"f1_macro", "recall_macro", "auroc_macro"}  # the detection task's MicroG-4M metrics
_AXIS_NAMES = {"domain": "Domain", "samples": "Samples", "granularity": "Actions", "task": "Task"}


def collect(dirs: list[str | Path]) -> tuple[dict, dict[str, dict]]:
    """The grid description (``suite.json``) and the result records (by job id) found in ``dirs``.

    Raises:
        ConfigError: a folder without ``suite.json``, or folders of different grids.
    """
    desc, records = None, {}
    for d in map(Path, dirs):
        path = d / "suite.json"
        if not path.is_file():
            raise ConfigError(f"{d}: no suite.json (not the work dir of `vidlab suite run`)")
        this = json.loads(path.read_text())
        if desc is None:
            desc = this
        elif this.get("fingerprint") != desc.get("fingerprint"):
            raise ConfigError(f"{d} holds results of a different grid than {dirs[0]} (suite.json fingerprints differ)")
        for res in sorted((d / "results").glob("*.json")):
            try:
                rec = json.loads(res.read_text())
            except ValueError as e:
                raise ConfigError(f"{res}: unreadable result file ({e}); delete it to rerun that job") from e
            if rec.get("kind") == "eval":
                records[rec["id"]] = rec
    if desc is None:
        raise ConfigError("no work dirs given")
    return desc, records


def _ordered_columns(desc: dict) -> list[dict]:
    cols = desc["columns"]
    if desc["layout"] != "severe":
        return cols
    rank = {a: i for i, a in enumerate(AXES)}
    return sorted(cols, key=lambda c: rank.get(c["axis"], len(AXES)))  # stable: file order within an axis


def _fmt(values: list[float], metric: str) -> str:
    if not values:
        return "-"
    scale = 100.0 if metric in PERCENT else 1.0
    v = np.asarray(values, dtype=np.float64) * scale
    digits = 1 if scale == 100.0 else 3
    return f"{v.mean():.{digits}f}" + (f" ± {v.std():.{digits}f}" if len(v) > 1 else "")


def _record_value(rec: dict, job: dict, metric: str) -> float | None:
    """The value of ``metric`` in a job's result record (the record's ``value`` is its first metric's)."""
    if metric == job["metric"]:
        return rec.get("value")
    return rec.get("metrics", {}).get(metric)


def _ranks(means: np.ndarray, lower_is_better: list[bool]) -> np.ndarray:
    """Per column, rank 1 = best (ties share the better rank); NaN where a cell has no result."""
    ranks = np.full(means.shape, np.nan)
    for j in range(means.shape[1]):
        col = means[:, j] if lower_is_better[j] else -means[:, j]
        ok = ~np.isnan(col)
        for i in np.flatnonzero(ok):
            ranks[i, j] = 1 + int((col[ok] < col[i]).sum())
    return ranks


def suite_table(desc: dict, records: dict[str, dict]) -> dict:
    """The table as data: ``header``, ``rows`` (strings), ``means`` (rows x columns, NaN = missing), ``done``,
    ``total``, ``columns``."""
    cols = _ordered_columns(desc)
    by_cell: dict[tuple[str, str], list[float]] = {}
    for job in desc["jobs"]:
        rec = records.get(job["id"])
        if rec is None:
            continue
        for c in cols:
            if (c["dataset"], c["protocol"]) == (job["dataset"], job["protocol"]):
                value = _record_value(rec, job, c["metric"])
                if value is not None:
                    by_cell.setdefault((job["method"], c["key"]), []).append(value)
    severe = desc["layout"] == "severe"
    header = ["Method"] + [
        (f"{_AXIS_NAMES.get(c['axis'], c['axis'] or '-')}: " if severe else "") + f"{c['label']} ({c['metric']})"
        for c in cols
    ]
    means = np.full((len(desc["rows"]), len(cols)), np.nan)
    rows = []
    for i, row in enumerate(desc["rows"]):
        cells = [by_cell.get((row["method"], c["key"]), []) for c in cols]
        means[i] = [np.mean(v) if v else np.nan for v in cells]
        rows.append([row["label"]] + [_fmt(v, c["metric"]) for v, c in zip(cells, cols)])
    if severe and len(desc["rows"]) > 1:
        header.append("Mean rank")
        ranks = _ranks(means, [c["lower_is_better"] for c in cols])
        for i, r in enumerate(rows):
            r.append("-" if np.isnan(ranks[i]).all() else f"{np.nanmean(ranks[i]):.2f}")
    done = sum(1 for j in desc["jobs"] if j["id"] in records)
    return {"header": header, "rows": rows, "means": means, "done": done, "total": len(desc["jobs"]), "columns": cols}


def format_table(table: dict, title: str = "") -> str:
    """Markdown."""
    widths = [max(len(str(r[k])) for r in [table["header"]] + table["rows"]) for k in range(len(table["header"]))]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [title] if title else []
    out += [line(table["header"]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in table["rows"]]
    return "\n".join(out)


def _plot(desc: dict, table: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols, means = table["columns"], table["means"]
    n = len(cols)
    fig, axes = plt.subplots(1, n, figsize=(max(3.0, 2.2 * n), 3.2), squeeze=False)
    labels = [r["label"] for r in desc["rows"]]
    colors = plt.cm.tab10(np.arange(len(labels)) % 10)
    for j, (ax, c) in enumerate(zip(axes[0], cols)):
        scale = 100.0 if c["metric"] in PERCENT else 1.0
        ax.bar(range(len(labels)), np.nan_to_num(means[:, j] * scale), color=colors)
        axis = _AXIS_NAMES.get(c["axis"], c["axis"]) if desc["layout"] == "severe" else ""
        ax.set_title(f"{axis}\n{c['label']}" if axis else c["label"], fontsize=8)
        ax.set_ylabel(c["metric"] + (" (%)" if scale == 100.0 else ""), fontsize=7)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    fig.suptitle(desc["suite"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(dirs: list[str | Path], out: str | Path | None = None) -> tuple[str, dict]:
    """Merge the results of ``dirs`` and write ``<out>.md``, ``<out>.csv`` (the table), ``<out>_jobs.csv`` (one line
    per finished job and metric) and ``<out>.png`` (default ``out``: ``<first dir>/report``). Returns (printed text,
    table)."""
    desc, records = collect(dirs)
    table = suite_table(desc, records)
    out = Path(out) if out is not None else Path(dirs[0]) / "report"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = format_table(table, title=f"{desc['suite']}: {table['done']}/{table['total']} jobs")
    out.with_suffix(".md").write_text(text + "\n")
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        csv.writer(f).writerows([table["header"]] + table["rows"])
    with open(out.parent / f"{out.name}_jobs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["job", "method", "dataset", "protocol", "seed", "metric", "value", "minutes"])
        for job in desc["jobs"]:
            rec = records.get(job["id"])
            for metric in (job.get("metrics") or [job["metric"]]) if rec is not None else []:
                w.writerow([job["id"], job["method"], job["dataset"], job["protocol"], job["seed"], metric,
                            _record_value(rec, job, metric), f"{rec['minutes']:.2f}"])  # fmt: skip
    png = _plot(desc, table, out.with_suffix(".png"))
    jobs_csv = out.parent / f"{out.name}_jobs.csv"
    files = f"table: {out.with_suffix('.md')}, {out.with_suffix('.csv')}; per job: {jobs_csv}; chart: {png}"
    return text + "\n" + files, table
