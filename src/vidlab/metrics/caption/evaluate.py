"""``vidlab caption-eval``: MicroG-4M's captioning and VQA evaluation of a prediction file.

Ground truth is MicroG-4M's JSON, ``[{"video_id": ..., "caption": ..., "qa_pairs": [{"Q": ..., "A": ...}, ...]}]``
(``caption`` may also be a list of reference captions). Predictions:

- caption task: a JSON list of ``{"video_id", "caption"}``, a JSON object ``{video_id: caption}`` (MicroG-4M's
  prediction files), or a CSV with a header holding ``video_id`` and ``caption``;
- vqa task: a JSON list of ``{"video_id", "question", "answer"}``, or of MicroG-4M's ``{"video_id", "qa_pairs":
  [{"Q", "A"}]}``, or a CSV with ``video_id``, ``question``, ``answer``.

VQA items are keyed by ``(video_id, question.strip())`` and answers are stripped, as MicroG-4M's ``BertVQA.py``;
an absent answer counts as an empty one. Where a key repeats, the last entry wins (MicroG-4M builds dicts), and the
repeats are reported. Only items present on both sides are scored (as MicroG-4M's BERTScore scripts): coverage, the
missing items and predictions that match no ground truth are printed before the table.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from vidlab.errors import InputError
from vidlab.metrics.caption.scores import DEFAULT_METRICS, METRIC_KEYS, caption_scores, check_available, metric_names

# published table columns (MicroG-4M's BENCHMARKS.md), each x100 with two decimals
TABLE_COLUMNS = (("Cider", "CIDEr"), ("Bleu-4", "BLEU-4"), ("Rouge-L", "ROUGE-L"), ("Meteor", "METEOR"),
                 ("S-BERT", "S-BERT"), ("BERTScore", "BERTScore"))  # fmt: skip


class CaptionInputError(InputError):
    """A ground-truth or prediction file that cannot be read as documented; the message names file and entry."""


def _load_json(path: Path):
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CaptionInputError(f"{path}: no such file") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptionInputError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None


def _text(value, where: str, field: str, allow_missing: bool = False) -> str:
    if value is None and allow_missing:
        return ""
    if not isinstance(value, str):
        got = "missing" if value is None else f"a {type(value).__name__}"
        raise CaptionInputError(f"{where}: '{field}' must be a string, got {got}")
    return value


def _video_id(entry: dict, where: str) -> str:
    vid = entry.get("video_id")
    if not isinstance(vid, (str, int)) or isinstance(vid, bool):
        raise CaptionInputError(f"{where}: 'video_id' must be a string or an integer, got {vid!r:.60}")
    return str(vid)


def _entries(data, path: Path) -> list[tuple[str, dict]]:
    """``(where, entry)`` for each object of a JSON list."""
    if not isinstance(data, list):
        raise CaptionInputError(f"{path}: expected a JSON list of objects, got a {type(data).__name__}")
    out = []
    for i, entry in enumerate(data):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise CaptionInputError(f"{where}: expected an object, got {entry!r:.60}")
        out.append((where, entry))
    return out


def _csv_rows(path: Path, fields: tuple[str, ...]) -> list[tuple[str, dict]]:
    """``(where, row)`` of a CSV with a header naming ``fields``; ``where`` names the line."""
    try:
        f = open(path, encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise CaptionInputError(f"{path}: no such file") from None
    with f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        lacking = [c for c in fields if c not in header]
        if lacking:
            raise CaptionInputError(f"{path}: the header (line 1) must name {', '.join(fields)}; lacks "
                                    f"{', '.join(lacking)} (header: {', '.join(header) or 'empty'})")  # fmt: skip
        rows = []
        for row in reader:
            where = f"{path}: line {reader.line_num}"
            if any(row.get(c) is None for c in fields):
                raise CaptionInputError(f"{where}: fewer fields than the header's {len(header)}")
            rows.append((where, row))
    return rows


def read_ground_truth(path: str | Path, task: str) -> tuple[dict, list[str]]:
    """MicroG-4M's ground truth: ``{video_id: [captions]}`` (caption) or ``{(video_id, question): [answer]}`` (vqa),
    in file order, and notes on repeated keys."""
    path = Path(path)
    out: dict = {}
    repeats = 0
    for where, entry in _entries(_load_json(path), path):
        vid = _video_id(entry, where)
        if task == "caption":
            caption = entry.get("caption")
            refs = caption if isinstance(caption, list) else [caption]
            refs = [_text(c, where, "caption") for c in refs]
            if not refs:
                raise CaptionInputError(f"{where}: 'caption' is an empty list")
            repeats += vid in out
            out[vid] = refs
            continue
        pairs = entry.get("qa_pairs")
        if not isinstance(pairs, list):
            raise CaptionInputError(f"{where}: 'qa_pairs' must be a list of {{'Q': ..., 'A': ...}}")
        for j, pair in enumerate(pairs):
            w = f"{where}, qa_pairs[{j}]"
            if not isinstance(pair, dict):
                raise CaptionInputError(f"{w}: expected an object with 'Q' and 'A'")
            key = (vid, _text(pair.get("Q"), w, "Q").strip())
            repeats += key in out
            out[key] = [_text(pair.get("A"), w, "A").strip()]
    notes = [f"{path}: {repeats} repeated {'video ids' if task == 'caption' else '(video_id, question) pairs'}; "
             "the last one counts"] if repeats else []  # fmt: skip
    return out, notes


def read_predictions(path: str | Path, task: str) -> tuple[dict, list[str]]:
    """Predictions keyed as :func:`read_ground_truth`'s, and notes (repeated keys, absent answers)."""
    path = Path(path)
    out: dict = {}
    repeats = absent = 0

    def put(key, text):
        nonlocal repeats
        repeats += key in out
        out[key] = text

    if path.suffix.lower() == ".csv":
        fields = ("video_id", "caption") if task == "caption" else ("video_id", "question", "answer")
        for _where, row in _csv_rows(path, fields):
            if task == "caption":
                put(row["video_id"], row["caption"])
            else:
                put((row["video_id"], row["question"].strip()), row["answer"].strip())
    else:
        data = _load_json(path)
        if task == "caption" and isinstance(data, dict):  # MicroG-4M's {video_id: caption}
            for vid, caption in data.items():
                put(vid, _text(caption, f"{path}: key {vid!r}", "caption"))
        else:
            for where, entry in _entries(data, path):
                vid = _video_id(entry, where)
                if task == "caption":
                    put(vid, _text(entry.get("caption"), where, "caption"))
                elif "qa_pairs" in entry:  # MicroG-4M's own layout
                    if not isinstance(entry["qa_pairs"], list):
                        raise CaptionInputError(f"{where}: 'qa_pairs' must be a list")
                    for j, pair in enumerate(entry["qa_pairs"]):
                        w = f"{where}, qa_pairs[{j}]"
                        if not isinstance(pair, dict):
                            raise CaptionInputError(f"{w}: expected an object with 'Q' and 'A'")
                        absent += pair.get("A") is None
                        put((vid, _text(pair.get("Q"), w, "Q").strip()), _text(pair.get("A"), w, "A", True).strip())
                else:
                    absent += entry.get("answer") is None
                    question = _text(entry.get("question"), where, "question").strip()
                    put((vid, question), _text(entry.get("answer"), where, "answer", True).strip())
    notes = [f"{path}: {repeats} repeated keys; the last one counts"] if repeats else []
    notes += [f"{path}: {absent} questions without an answer, scored as empty answers"] if absent else []
    return out, notes


def _key_text(key) -> str:
    return key if isinstance(key, str) else f"{key[0]} | {key[1]}"


def _listing(title: str, keys: list, limit: int | None, emit: Callable[[str], None]) -> None:
    if not keys:
        return
    emit(f"{title} ({len(keys)}):")
    for key in keys[:limit]:
        emit(f"  {_key_text(key)}")
    if limit is not None and len(keys) > limit:
        emit(f"  ... and {len(keys) - limit} more (--list-all lists every one)")


def format_table(values: dict[str, float], task: str, name: str) -> list[str]:
    """MicroG-4M's table layout, values x100 with two decimals; metrics not computed show ``-``."""
    heads = ["Model"] + [("S-VQA" if h == "S-BERT" and task == "vqa" else h) for h, _ in TABLE_COLUMNS]
    cells = [name] + [f"{values[k] * 100:.2f}" if k in values else "-" for _, k in TABLE_COLUMNS]
    widths = [max(len(h), len(c)) for h, c in zip(heads, cells)]
    row = lambda items: "| " + " | ".join(x.ljust(w) for x, w in zip(items, widths)) + " |"  # noqa: E731
    return [row(heads), row(["-" * w for w in widths]), row(cells)]


def run_caption_eval(
    gt: str | Path,
    pred: str | Path,
    task: str = "caption",
    metrics: Iterable[str] = DEFAULT_METRICS,
    tokenize: str = "none",
    *,
    name: str | None = None,
    strict: bool = False,
    list_all: bool = False,
    emit: Callable[[str], None] = print,
    **score_kwargs,
) -> dict[str, float]:
    """Score ``pred`` against ``gt``: print coverage, notes, the table, and last a ``RESULT`` line of raw values.

    ``score_kwargs`` go to :func:`~vidlab.metrics.caption.scores.caption_scores` (models, device). Returns the
    values.
    """
    if task not in ("caption", "vqa"):
        raise InputError(f"unknown task {task!r}; choose from caption, vqa")
    names = metric_names(metrics)
    check_available(names, tokenize, score_kwargs.get("meteor"), score_kwargs.get("sbert_model"),
                    score_kwargs.get("bertscore_model"))  # fmt: skip
    refs, notes = read_ground_truth(gt, task)
    hyps, pred_notes = read_predictions(pred, task)
    notes += pred_notes
    keys = [k for k in refs if k in hyps]
    missing = [k for k in refs if k not in hyps]
    unknown = [k for k in hyps if k not in refs]
    unit = "videos" if task == "caption" else "questions"
    share = 100.0 * len(keys) / len(refs) if refs else 0.0
    emit(f"{task}: {len(keys)} of {len(refs)} ground-truth {unit} have a prediction ({share:.1f}%); "
         f"tokenize={tokenize}")  # fmt: skip
    limit = None if list_all else 20
    _listing(f"{unit} without a prediction (not scored)", missing, limit, emit)
    _listing("predictions matching no ground truth (ignored)", unknown, limit, emit)
    for note in notes:
        emit(f"note: {note}")
    if strict and missing:
        raise CaptionInputError(f"{pred}: {len(missing)} ground-truth {unit} have no prediction (--strict)")
    if not keys:
        raise CaptionInputError(f"{pred}: no prediction matches an item of {gt}; nothing to score")
    ids = {k: str(i) for i, k in enumerate(keys)}  # VQA keys are tuples; the scorers take plain ids
    values = caption_scores({ids[k]: refs[k] for k in keys}, {ids[k]: hyps[k] for k in keys}, names, tokenize,
                            log=lambda msg: emit(f"note: {msg}"), **score_kwargs)  # fmt: skip
    if "bleu" in names:
        emit("BLEU-1 / 2 / 3 / 4 (x100): " + " / ".join(f"{values[k] * 100:.2f}" for k in METRIC_KEYS["bleu"]))
    for line in format_table(values, task, name or Path(pred).stem):
        emit(line)
    emit("RESULT " + " ".join(f"{k}={v:.6f}" for k, v in values.items()))
    return values
