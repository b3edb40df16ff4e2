"""``vidlab report``: one self-contained HTML page about a training run's work dir.

The page holds its CSS inline and its figures as base64 PNG (matplotlib, Agg backend); it has no scripts and no link
out of the file, so it opens the same anywhere, offline, and can be mailed or attached to an issue. Sections, with
stable ids: Summary, Curves (``metrics.jsonl``), Per-class accuracy and Confusion matrix (``vidlab test --out``
results files), Config (``config.yaml``), Environment (what the run recorded, then this machine's facts, labelled as
such) and Timings. An input that is missing or unreadable gives a section saying so; the page is still written.
"""

from __future__ import annotations

import datetime
import html
import io
import json
import math
import os
import platform
import re
import sys
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from vidlab.errors import InputError, MissingFileError

SECTIONS = (
    ("summary", "Summary"),
    ("curves", "Curves"),
    ("per-class-accuracy", "Per-class accuracy"),
    ("confusion-matrix", "Confusion matrix"),
    ("config", "Config"),
    ("environment", "Environment"),
    ("timings", "Timings"),
)
_RUN_FILES = ("config.yaml", "metrics.jsonl", "train.log", "best.pth")
_LOG_LINE = re.compile(r"^(\d\d):(\d\d):(\d\d) (?:INFO|WARNING|ERROR) (.*)$")
# train.py's opening log line (_log_start)
_START = re.compile(
    r"training (?P<model>\S+) \((?P<task>\w+) task\): (?P<train>\d+) train / (?P<val>\d+) val \w+, "
    r"(?P<processes>\d+) processes, global batch (?P<batch>\d+), lr (?P<lr>\S+), precision (?P<precision>.+?)"
    r"(?:, (?P<frozen>\d+) frozen parameters)?$"
)
_EPOCH = re.compile(r"^epoch (\d+): ")
_BEFORE_START = re.compile(r"^(resumed from|loaded|inflated) ")  # what a run logs before its opening line
_STYLE = """
body { font-family: sans-serif; margin: 0 auto; max-width: 1100px; padding: 0 16px 40px; color: #222; }
h1 { border-bottom: 2px solid #3465a4; padding-bottom: 6px; }
h2 { border-bottom: 1px solid #bbb; margin-top: 36px; }
nav a { margin-right: 12px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 8px; overflow: auto; max-height: 640px; font-size: 13px; }
img { max-width: 100%; height: auto; display: block; margin: 8px 0; }
p.missing { background: #fff4e0; border-left: 4px solid #e09b20; padding: 6px 10px; }
p.note { color: #555; font-size: 13px; }
"""


@dataclass
class Results:
    """One ``vidlab test --out`` file: its document (``scores``/``labels`` as arrays) or why it could not be read."""

    path: Path
    doc: dict | None = None
    error: str | None = None


@dataclass
class Run:
    """What a work dir holds, as read for the report; ``notes`` says per section what is missing or unreadable."""

    work_dir: Path
    config_text: str | None = None
    config_source: str = ""
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    history_source: str = ""
    checkpoint: dict = field(default_factory=dict)  # meta, best, epoch, path of the newest checkpoint
    log_sessions: list[dict] = field(default_factory=list)  # per `vidlab train` start: times, start line, epochs
    results: list[Results] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, section: str, text: str) -> None:
        self.notes.setdefault(section, []).append(text)


def write_report(work_dir: str | Path, out: str | Path | None = None, results: list[str | Path] | None = None) -> Path:
    """Write the report of ``work_dir`` to ``out`` (default ``<work_dir>/report.html``) and return its path.

    Args:
        work_dir: a `vidlab train` work dir.
        out: the HTML file to write.
        results: ``vidlab test --out`` files to report on; default: those found in ``work_dir`` (``*.json``).

    Raises:
        MissingFileError: ``work_dir`` or a named results file does not exist.
        InputError: ``work_dir`` is not a vidlab work dir, or a named results file is not a results file.
    """
    text = render_report(work_dir, results)
    out = Path(out) if out is not None else Path(work_dir) / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")  # then renamed: a reader never sees half a page
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def render_report(work_dir: str | Path, results: list[str | Path] | None = None) -> str:
    """The report of ``work_dir`` as an HTML string (see :func:`write_report`)."""
    run = read_run(work_dir, results)
    parts = {
        "summary": _summary(run),
        "curves": _curves(run),
        "per-class-accuracy": _per_class(run),
        "confusion-matrix": _confusion(run),
        "config": _config(run),
        "environment": _environment(run),
        "timings": _timings(run),
    }
    title = f"vidlab report: {run.work_dir.name}"
    nav = " ".join(f'<a href="#{sid}">{html.escape(name)}</a>' for sid, name in SECTIONS)
    body = []
    for sid, name in SECTIONS:
        notes = "".join(f'<p class="missing">{_e(n)}</p>' for n in run.notes.get(sid, []))
        body.append(f'<section id="{sid}">\n<h2>{html.escape(name)}</h2>\n{notes}{parts[sid]}\n</section>')
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<header>\n<h1>{_e(title)}</h1>\n<p class="note">work dir {_e(run.work_dir)}; report written {stamp} '
        "by <code>vidlab report</code></p>\n"
        f"<nav>{nav}</nav>\n</header>\n<main>\n" + "\n".join(body) + "\n</main>\n</body>\n</html>\n"
    )


# --- reading the work dir -------------------------------------------------------------------------------------------


def read_run(work_dir: str | Path, results: list[str | Path] | None = None) -> Run:
    """Read what the report shows from ``work_dir`` (and the named results files, else those found there)."""
    work_dir = Path(work_dir)
    _check_work_dir(work_dir)
    run = Run(work_dir=work_dir)
    _read_checkpoint(run)
    _read_config(run)
    _read_history(run)
    _read_log(run)
    if results:
        run.results = [_read_results(Path(p), named=True) for p in results]
    else:
        found = [_read_results(p, named=False) for p in sorted(work_dir.glob("*.json"))]
        run.results = [r for r in found if r is not None]
    return run


def _checkpoints(work_dir: Path) -> list[Path]:
    """The work dir's training checkpoints, newest state first: ``epoch_N.pth`` by N, ``iter_E_K.pth``, best.pth."""

    def number(p: Path) -> tuple[int, ...]:
        return tuple(int(v) for v in p.stem.split("_")[1:] if v.isdigit())

    epochs = sorted(work_dir.glob("epoch_*.pth"), key=number, reverse=True)
    iters = sorted(work_dir.glob("iter_*.pth"), key=number, reverse=True)
    best = [work_dir / "best.pth"] if (work_dir / "best.pth").is_file() else []
    return epochs + iters + best


def _check_work_dir(work_dir: Path) -> None:
    if not work_dir.exists():
        raise MissingFileError(f"work dir not found: {work_dir}")
    if not work_dir.is_dir():
        raise InputError(f"{work_dir} is not a vidlab work dir: it is a file, not a folder (give the run's work_dir)")
    if any((work_dir / name).is_file() for name in _RUN_FILES) or _checkpoints(work_dir):
        return
    hint = " (it holds suite.json: use `vidlab suite report` for a suite)" if (work_dir / "suite.json").exists() else ""
    raise InputError(
        f"{work_dir} is not a vidlab work dir: it holds none of {', '.join(_RUN_FILES)}, epoch_N.pth (the files "
        f"`vidlab train` writes into its work_dir){hint}"
    )


def _load_checkpoint(path: Path) -> dict:
    """A checkpoint's non-tensor entries; memory-mapped, so the weights of a large model are not read."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # not a zip-format file: mmap cannot be used
        return torch.load(path, map_location="cpu", weights_only=True)


def _read_checkpoint(run: Run) -> None:
    found = _checkpoints(run.work_dir)
    if not found:
        run.note("summary", "no checkpoint (best.pth, epoch_N.pth): the best epoch and class names are not known")
        return
    path = found[0]
    try:
        state = _load_checkpoint(path)
    except Exception as e:  # a corrupt file, pickled objects outside the allow-list: the rest of the report stands
        run.note("summary", f"cannot read checkpoint {path.name}: {str(e).splitlines()[0] if str(e) else e!r}")
        return
    if not isinstance(state, dict):
        run.note("summary", f"{path.name} is not a vidlab training checkpoint")
        return
    keep = ("meta", "best", "epoch", "history", "config")
    run.checkpoint = {k: state[k] for k in keep if k in state}
    run.checkpoint["path"] = path


def _read_config(run: Run) -> None:
    path = run.work_dir / "config.yaml"
    if path.is_file():
        run.config_text, run.config_source = path.read_text(errors="replace"), path.name
    elif isinstance(run.checkpoint.get("config"), dict):
        run.config_text = yaml.safe_dump(run.checkpoint["config"], sort_keys=False)
        run.config_source = f"{run.checkpoint['path'].name} (config.yaml is missing)"
    else:
        run.note("config", "no config.yaml in the work dir and no config in a checkpoint")
        return
    try:
        parsed = yaml.safe_load(run.config_text)
    except yaml.YAMLError as e:
        run.note("config", f"{run.config_source} is not valid YAML ({str(e).splitlines()[0]}); shown as it is")
        return
    run.config = parsed if isinstance(parsed, dict) else {}


def _read_history(run: Run) -> None:
    path = run.work_dir / "metrics.jsonl"
    if path.is_file():
        bad = 0
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad += bool(line.strip())
                continue
            if isinstance(record, dict) and isinstance(record.get("epoch"), int):
                run.history.append(record)
        run.history_source = path.name
        if bad:
            run.note("curves", f"{path.name}: {bad} line(s) that are not JSON were left out")
    elif isinstance(run.checkpoint.get("history"), list):
        run.history = [h for h in run.checkpoint["history"] if isinstance(h, dict) and "epoch" in h]
        run.history_source = f"{run.checkpoint['path'].name} (metrics.jsonl is missing)"
    by_epoch = {h["epoch"]: h for h in run.history}  # a run resumed from an older checkpoint repeats epochs: the last
    run.history = [by_epoch[e] for e in sorted(by_epoch)]
    if not run.history:
        run.note("curves", "no training history: metrics.jsonl is missing or empty (no epoch has finished)")


def _read_log(run: Run) -> None:
    """``train.log``: one session per `vidlab train` start (a resume appends a new one) with its line times (1 s
    resolution, the log's %H:%M:%S), its opening line and the times its epochs ended."""
    path = run.work_dir / "train.log"
    if not path.is_file():
        run.note("timings", "no train.log: wall times of the training sessions are not known")
        return
    session = None
    for line in path.read_text(errors="replace").splitlines():
        m = _LOG_LINE.match(line)
        if m is None:
            continue
        t, message = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3]), m[4]
        start = _START.match(message)
        fresh = session is not None and session["start"] is None and not session["epochs"]
        if session is None or _BEFORE_START.match(message) and not fresh or start is not None and not fresh:
            session = {"start": None, "times": [], "epochs": {}, "offset": 0}
            run.log_sessions.append(session)
        if start is not None:
            session["start"] = start.groupdict()
        if session["times"] and t + session["offset"] < session["times"][-1]:
            session["offset"] += 86400  # the clock passed midnight
        session["times"].append(t + session["offset"])
        epoch = _EPOCH.match(message)
        if epoch is not None:
            session["epochs"][int(epoch[1])] = session["times"][-1]


def _read_results(path: Path, named: bool) -> Results | None:
    """A results file; a file found in the work dir that is not one is skipped (None), a named one is an error."""
    if not path.is_file():
        raise MissingFileError(f"results file not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if named:
            raise InputError(f"{path} is not a `vidlab test --out` results file (not JSON: {e})") from None
        return None
    if not isinstance(doc, dict) or not {"scores", "labels"} <= doc.keys():
        if named:
            raise InputError(f"{path} is not a `vidlab test --out` results file (no scores and labels)")
        return None
    try:
        doc["scores"] = np.asarray(doc["scores"], dtype=np.float64)
        doc["labels"] = np.asarray(doc["labels"])
        if doc["scores"].ndim != 2 or len(doc["labels"]) != len(doc["scores"]):
            raise ValueError(f"scores of shape {doc['scores'].shape} for {len(doc['labels'])} labels")
    except (ValueError, TypeError) as e:
        return Results(path, error=f"{path.name}: unreadable scores or labels ({e})")
    for key in ("meta", "metrics"):
        doc[key] = doc.get(key) if isinstance(doc.get(key), dict) else {}
    return Results(path, doc=doc)


def _class_names(run: Run, res: Results, n: int) -> tuple[list[str], str]:
    """Names of ``n`` classes and where they came from: the checkpoint's meta, the results' checkpoint, the label
    map the config names; else the class indices."""
    meta = run.checkpoint.get("meta") or {}
    if isinstance(meta.get("classes"), list) and len(meta["classes"]) == n:
        return [str(c) for c in meta["classes"]], f"meta of {run.checkpoint['path'].name}"
    other = Path(str(res.doc["meta"].get("checkpoint", "")))
    if other.suffix == ".pth" and other.is_file() and other != run.checkpoint.get("path"):
        try:
            classes = (_load_checkpoint(other).get("meta") or {}).get("classes")
        except Exception:
            classes = None
        if isinstance(classes, list) and len(classes) == n:
            return [str(c) for c in classes], f"meta of {other}"
    data = run.config.get("data") if isinstance(run.config.get("data"), dict) else {}
    if data.get("label_map"):
        p = Path(str(data["label_map"]))
        if not p.is_absolute() and (Path(str(data.get("root", "."))) / p).exists():
            p = Path(str(data.get("root", "."))) / p
        if p.is_file():
            names = [line.strip() for line in p.read_text(errors="replace").splitlines() if line.strip()]
            if len(names) == n:
                return names, f"label map {p}"
    return [str(i) for i in range(n)], "none found (class indices shown)"


# --- HTML and figure helpers ----------------------------------------------------------------------------------------


def _e(value) -> str:
    return html.escape(str(value))


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f'<td class="num">{_e(_fmt(v))}</td>' if _is_number(v) else f"<td>{_e(_fmt(v))}</td>" for v in row]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>\n<tr>{head}</tr>\n" + "\n".join(body) + "\n</table>"


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _missing(text: str) -> str:
    return f'<p class="missing">{_e(text)}</p>'


def _image(fig, alt: str) -> str:
    """``fig`` as an inline base64 PNG (closed afterwards)."""
    from vidlab.engine.plots import _pyplot

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})  # no tool URL in the file
    _pyplot().close(fig)
    data = b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _numeric(history: list[dict]) -> list[str]:
    """The numeric columns of the history, in first-seen order."""
    keys: dict[str, None] = {}
    for h in history:
        for k, v in h.items():
            if k != "epoch" and _is_number(v):
                keys.setdefault(k)
    return list(keys)


# --- sections -------------------------------------------------------------------------------------------------------


def _summary(run: Run) -> str:
    cfg, ckpt = run.config, run.checkpoint
    model = (cfg.get("model") or {}).get("name") if isinstance(cfg.get("model"), dict) else None
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), dict) else {}
    task = cfg.get("task") or (meta["task"].get("name") if isinstance(meta.get("task"), dict) else None)
    configured = cfg["train"].get("epochs") if isinstance(cfg.get("train"), dict) else None
    done = run.history[-1]["epoch"] if run.history else ckpt.get("epoch", "none")
    rows = [["work dir", str(run.work_dir)], ["model", model or meta.get("model") or "not recorded"]]
    epochs = f"{done} of {configured}" if configured is not None else str(done)
    rows += [["task", task or "not recorded"], ["epochs done", epochs]]
    best = ckpt.get("best")
    if isinstance(best, dict) and best.get("value") is not None:
        rows.append(["best checkpoint", f"{best.get('metric')} {_fmt(best['value'])} at epoch {best.get('epoch')}"])
    if run.history:
        last = run.history[-1]
        rows += [[f"last epoch: {k}", last[k]] for k in _numeric([last]) if k == "loss" or k.startswith("val_")]
    html_rows = _table(["item", "value"], rows)
    if not run.results:
        return html_rows + _missing(
            "no `vidlab test --out` results file in the work dir (*.json) and none given with --results: "
            "per-class accuracy and the confusion matrix are left out"
        )
    res_rows = []
    for res in run.results:
        if res.doc is None:
            res_rows.append([res.path.name, "", "", res.error])
            continue
        values = ", ".join(f"{k}={_fmt(v)}" for k, v in res.doc["metrics"].items() if _is_number(v))
        res_rows.append([res.path.name, res.doc["meta"].get("split", "?"), len(res.doc["scores"]), values])
    return html_rows + "<h3>Results files</h3>\n" + _table(["file", "split", "videos", "metrics"], res_rows)


def _curves(run: Run) -> str:
    if not run.history:
        return ""
    keys = _numeric(run.history)
    parts = [f'<p class="note">from {_e(run.history_source)}; lr is the value at the end of each epoch</p>']
    fig = _curves_figure(run.history, keys)
    if fig is not None:
        parts.append(_image(fig, "training curves: loss, learning rate, validation"))
    else:
        parts.append(_missing(f"{run.history_source} holds no finite loss, lr or validation values to plot"))
    rows = [[h["epoch"], *[h.get(k, "") for k in keys]] for h in run.history]
    parts.append(_table(["epoch", *keys], rows))
    return "\n".join(parts)


def _series(history: list[dict], key: str) -> tuple[list, list]:
    pts = [(h["epoch"], float(h[key])) for h in history if _is_number(h.get(key)) and math.isfinite(h[key])]
    return ([p[0] for p in pts], [p[1] for p in pts]) if pts else ([], [])


def _curves_figure(history: list[dict], keys: list[str]):
    from matplotlib.ticker import MaxNLocator

    from vidlab.engine.plots import _pyplot

    val = [k for k in keys if k.startswith("val_")]
    in_unit = [k for k in val if all(0 <= v <= 1 for v in _series(history, k)[1])]  # accuracies, mAP
    panels = [("train loss", [k for k in keys if k == "loss" or (k.startswith("train_") and k.endswith("_loss"))])]
    panels += [("learning rate", ["lr"] if "lr" in keys else [])]
    panels += [("validation (0..1)", in_unit), ("validation", [k for k in val if k not in in_unit])]
    panels = [(title, ks) for title, ks in panels if any(_series(history, k)[0] for k in ks)]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 0.8, 3.4), squeeze=False)
    for ax, (title, ks) in zip(axes[0], panels):
        for k in ks:
            x, y = _series(history, k)
            ax.plot(x, y, marker="o", markersize=3, label=k[4:] if k.startswith("val_") else k)
        ax.set(xlabel="epoch", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title == "validation (0..1)":
            ax.set_ylim(0, 1.02)
        if len(ks) > 1 or title.startswith("validation"):
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _single_label(res: Results) -> str | None:
    """Why per-class accuracy and the confusion matrix do not apply to ``res`` (None when they do)."""
    if res.doc is None:
        return res.error
    task = res.doc["meta"].get("task", "recognition")
    labels, n = res.doc["labels"], res.doc["scores"].shape[1]
    if task != "recognition":
        return f"{res.path.name}: task {task} has no classes to count accuracy over"
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        return f"{res.path.name}: multi-label results (per-class accuracy and the confusion matrix need one label)"
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= n:
        return f"{res.path.name}: labels outside the {n} classes of its scores"
    return None


def _single_label_results(run: Run, parts: list[str]):
    """``(results, scores, labels, number of classes)`` of each results file with one label per video, each after
    its heading in ``parts``; the others get a line there saying why they are left out."""
    for res in run.results:
        parts.append(f"<h3>{_e(res.path.name)}</h3>")
        why = _single_label(res)
        if why is not None:
            parts.append(_missing(why))
            continue
        scores = res.doc["scores"]
        yield res, scores, res.doc["labels"].astype(np.int64), scores.shape[1]


def _per_class(run: Run) -> str:
    if not run.results:
        return _missing("no results file: run `vidlab test --checkpoint best.pth --out WORK_DIR/test_results.json`")
    parts = []
    for res, scores, labels, n in _single_label_results(run, parts):
        names, source = _class_names(run, res, n)
        counts = np.bincount(labels, minlength=n)
        correct = np.bincount(labels[scores.argmax(1) == labels], minlength=n)
        acc = np.where(counts > 0, correct / np.maximum(counts, 1), np.nan)
        mean = float(np.nanmean(acc)) if counts.any() else float("nan")
        parts.append(
            f'<p class="note">{len(labels)} videos; top-1 {_fmt(float(correct.sum() / len(labels)))}, mean class '
            f"accuracy {_fmt(mean)} over the {int((counts > 0).sum())} classes with videos; class names: "
            f"{_e(source)}</p>"
        )
        parts.append(_image(_per_class_figure(acc, correct, counts, names), f"per-class accuracy, {res.path.name}"))
        rows = [[c, names[c], int(counts[c]), int(correct[c]), float(acc[c]) if counts[c] else "no videos"]
                for c in range(n)]  # fmt: skip
        parts.append(_table(["class", "name", "videos", "correct", "accuracy"], rows))
    return "\n".join(parts)


def _per_class_figure(acc: np.ndarray, correct: np.ndarray, counts: np.ndarray, names: list[str]):
    from vidlab.engine.plots import _pyplot

    plt = _pyplot()
    n = len(acc)
    shown = np.nan_to_num(acc, nan=0.0)
    if n <= 60:
        fig, ax = plt.subplots(figsize=(9, 0.24 * n + 1.2))
        ax.barh(range(n), shown, color="#3465a4")
        for c in range(n):
            text = f"{acc[c]:.2f} ({correct[c]}/{counts[c]})" if counts[c] else "no videos"
            ax.text(shown[c] + 0.01, c, text, va="center", fontsize=6, color="#333" if counts[c] else "#999")
        ax.set_yticks(range(n), [name[:32] for name in names], fontsize=7)
        ax.invert_yaxis()  # class 0 on top, as in the table
        ax.set(xlim=(0, 1.12), xlabel="accuracy (top-1 within the class)")
    else:  # too many classes for labels: the distribution, sorted
        fig, ax = plt.subplots(figsize=(9, 3.2))
        ax.bar(range(n), np.sort(shown)[::-1], width=1.0, color="#3465a4")
        ax.set(ylim=(0, 1), xlabel=f"{n} classes, sorted by accuracy", ylabel="accuracy")
    ax.grid(axis="x" if n <= 60 else "y", alpha=0.3)
    fig.tight_layout()
    return fig


def _confusion(run: Run) -> str:
    from vidlab.metrics import confusion_matrix

    if not run.results:
        return _missing("no results file: the confusion matrix needs per-video scores (`vidlab test --out`)")
    parts = []
    for res, scores, labels, n in _single_label_results(run, parts):
        names, _ = _class_names(run, res, n)
        cm = confusion_matrix(scores.argmax(1), labels, num_classes=n)
        parts.append('<p class="note">rows: true class, columns: prediction; colour: share of the row</p>')
        parts.append(_image(_confusion_figure(cm, names), f"confusion matrix, {res.path.name}"))
        off = [(int(cm[i, j]), i, j) for i in range(n) for j in range(n) if i != j and cm[i, j]]
        rows = [[names[i], names[j], c, c / cm[i].sum()] for c, i, j in sorted(off, key=lambda t: -t[0])[:10]]
        if rows:
            parts.append("<h4>Most frequent confusions</h4>\n" + _table(["true", "predicted", "videos", "share"], rows))
        else:
            parts.append('<p class="note">no confusions: every video was predicted as its class</p>')
    return "\n".join(parts)


def _confusion_figure(cm: np.ndarray, names: list[str]):
    from vidlab.engine.plots import _pyplot

    plt = _pyplot()
    n = len(cm)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = min(12.0, max(4.5, 0.35 * n + 2))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if n <= 40:
        ax.set_xticks(range(n), [name[:24] for name in names], rotation=90, fontsize=7)
        ax.set_yticks(range(n), [name[:24] for name in names], fontsize=7)
    if n <= 20:  # counts in the cells
        for i, j in zip(*np.nonzero(cm)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    ax.set(xlabel="predicted", ylabel="true", title="confusion (row-normalized)")
    fig.tight_layout()
    return fig


def _config(run: Run) -> str:
    if run.config_text is None:
        return ""
    return f'<p class="note">from {_e(run.config_source)}</p>\n<pre>{_e(run.config_text)}</pre>'


def _recorded_environment(run: Run) -> list[list]:
    rows = []
    meta = run.checkpoint.get("meta") if isinstance(run.checkpoint.get("meta"), dict) else {}
    for key, value in meta.items():
        if key.endswith("_version"):
            rows.append([key.replace("_", " "), value, f"meta of {run.checkpoint['path'].name}"])
    precisions = sorted({str(h["precision"]) for h in run.history if "precision" in h})
    if precisions:
        rows.append(["precision per epoch", ", ".join(precisions), "metrics.jsonl"])
    for i, session in enumerate(run.log_sessions):
        start = session["start"]
        if start is None:
            continue
        where = "train.log" + (f", session {i + 1}" if len(run.log_sessions) > 1 else "")
        rows.append(["precision (device kernels)", start["precision"], where])
        rows.append(["processes", int(start["processes"]), where])
        rows.append(["global batch", int(start["batch"]), where])
        cpu = re.search(r"CPU (\S+) kernels", start["precision"])
        if cpu:
            rows.append(["CPU capability", cpu[1], where])
    sections = {k: v for k, v in run.config.items() if isinstance(v, dict)}
    if "device" in run.config:
        rows.append(["device (config)", run.config["device"], run.config_source])
    train = sections.get("train", {})
    for key in ("threads", "amp", "strategy", "deterministic", "channels_last"):
        if key in train:
            value = train[key] if train[key] is not None else "not set (torch's default)"
            rows.append([f"train.{key}", value, run.config_source])
    for res in run.results:
        if res.doc is not None and "precision" in res.doc["meta"]:
            rows.append(["test precision", res.doc["meta"]["precision"], res.path.name])
    return rows


def _machine_environment() -> list[list]:
    import matplotlib
    import torch

    import vidlab

    rows = [["python", sys.version.split()[0]], ["platform", platform.platform()]]
    rows += [["vidlab", vidlab.__version__], ["torch", torch.__version__], ["numpy", np.__version__]]
    rows += [["matplotlib", matplotlib.__version__], ["CPU capability", torch.backends.cpu.get_cpu_capability()]]
    rows += [["CPU cores (os.cpu_count)", os.cpu_count()], ["torch threads", torch.get_num_threads()]]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        rows.append(["CUDA devices", ", ".join(names)])
    else:
        rows.append(["CUDA devices", "none"])
    return rows


def _environment(run: Run) -> str:
    recorded = _recorded_environment(run)
    parts = ["<h3>Recorded by the run</h3>"]
    if recorded:
        parts.append(_table(["item", "value", "source"], recorded))
    else:
        parts.append(_missing("the work dir records no environment facts (no checkpoint meta, log or config)"))
    parts.append("<h3>This machine, at report time (not recorded by the run)</h3>")
    parts.append(
        '<p class="note">the machine that wrote this report; the run may have used another one</p>\n'
        + _table(["item", "value"], _machine_environment())
    )
    return "\n".join(parts)


def _timings(run: Run) -> str:
    parts = []
    ended = {e: t for s in run.log_sessions for e, t in s["epochs"].items()}
    starts = {min(s["epochs"]): s["times"][0] for s in run.log_sessions if s["epochs"] and s["times"]}
    rows, total = [], 0.0
    for h in run.history:
        e = h["epoch"]
        train_s = h.get("train_time_s")
        total += train_s if _is_number(train_s) else 0.0
        before = ended.get(e - 1) if e not in starts else starts[e]
        wall = ended[e] - before if e in ended and before is not None and ended[e] >= before else "not logged"
        rows.append([e, train_s if _is_number(train_s) else "not recorded", wall])
    if rows:
        parts.append(
            "<p class=\"note\">train: the epoch's optimizer steps (metrics.jsonl); wall: from the previous epoch's "
            "end (or the session's start) to this epoch's log line, with validation and checkpoints (train.log, "
            "1 s resolution)</p>"
        )
        parts.append(_table(["epoch", "train (s)", "wall (s)"], rows))
    summary = []
    if rows:
        summary.append(["training steps, all epochs (s)", total, "sum of metrics.jsonl train_time_s"])
    walls = [s["times"][-1] - s["times"][0] for s in run.log_sessions if s["times"]]
    if walls:
        what = "train.log, first to last line" + (f" of each of {len(walls)} sessions" if len(walls) > 1 else "")
        summary.append(["training wall time (s)", float(sum(walls)), what])
    for res in run.results:
        if res.doc is None:
            continue
        meta = res.doc["meta"]
        seconds = meta.get("time_s", meta["minutes"] * 60 if _is_number(meta.get("minutes")) else None)
        summary.append([f"test time, {res.path.name} (s)", seconds if _is_number(seconds) else "not recorded",
                        "results file meta"])  # fmt: skip
    if summary:
        parts.append(_table(["timing", "value", "source"], summary))
    else:
        parts.append(_missing("no timings: no metrics.jsonl, train.log or results file"))
    return "\n".join(parts)
