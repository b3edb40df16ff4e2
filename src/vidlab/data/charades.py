"""Charades annotations -> multi-label video items (``data.format: charades_csv``).

``Charades_v1_train.csv`` / ``Charades_v1_test.csv`` (comma-separated, with a header) have the columns
``id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length``; only ``id`` and
``actions`` are read. ``actions`` lists the video's action intervals as ``class start end`` separated by ``;``,
e.g. ``c092 11.90 21.20;c147 0.00 12.60`` (seconds), and may be empty. Class ``cNNN`` is index ``NNN`` (157 classes,
``c000`` .. ``c156``, the lines of ``Charades_v1_classes.txt``). The video of row ``id`` is ``<root>/<id>.mp4``
(the ``Charades_v1_480`` / ``Charades_v1`` release).

The target is the video-level multi-hot vector of every class that has an interval in the video (what PySlowFast
evaluates on; PySlowFast trains on the classes of the frames a training clip spans, see docs/DATA.md). A video
without any action is kept with an all-zero target, as PySlowFast's loader keeps every video of its frame lists: it
adds negatives to every class's average precision.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from vidlab.data.datasets import AnnotationError, VideoItem

__all__ = ["CHARADES_CLASSES", "parse_charades_actions", "parse_charades_csv"]

#: classes of Charades v1 (``c000`` .. ``c156``)
CHARADES_CLASSES = 157

_CODE = re.compile(r"c(\d{3})")


def parse_charades_actions(field: str, num_classes: int = CHARADES_CLASSES, where: str = "") -> list[tuple]:
    """The ``actions`` field -> ``[(class index, start s, end s), ...]`` in the order written.

    Raises:
        AnnotationError: an entry that is not ``cNNN start end`` with numbers, or a class outside
            ``[0, num_classes)``; the message starts with ``where`` (``file:line``).
    """
    out = []
    for entry in field.split(";"):
        entry = entry.strip()
        if not entry:
            continue
        parts = entry.split()
        code = _CODE.fullmatch(parts[0]) if parts else None
        if len(parts) != 3 or code is None:
            raise AnnotationError(f"{where}: expected actions as 'cNNN start end;...', got {entry!r}")
        try:
            start, end = float(parts[1]), float(parts[2])
        except ValueError:
            raise AnnotationError(f"{where}: action {entry!r}: start and end must be seconds") from None
        cls = int(code.group(1))
        if cls >= num_classes:
            raise AnnotationError(f"{where}: action class {parts[0]} out of range [c000, c{num_classes - 1:03d}]")
        out.append((cls, start, end))
    return out


def parse_charades_csv(
    ann_file: str | Path, root: str | Path, num_classes: int = CHARADES_CLASSES, video_tmpl: str = "{id}.mp4"
) -> list[VideoItem]:
    """Parse a Charades CSV into multi-label items (labels: the sorted distinct classes of the video's actions).

    Args:
        ann_file: ``Charades_v1_train.csv`` or ``Charades_v1_test.csv``.
        root: the folder of the videos.
        num_classes: classes of the model; action classes must lie below it.
        video_tmpl: the video's path under ``root``, formatted with ``id``.

    Returns:
        One :class:`~vidlab.data.datasets.VideoItem` per row, in file order; its ``meta["actions"]`` holds the
        ``(class, start, end)`` intervals (seconds).

    Raises:
        AnnotationError: missing file, a header without ``id`` / ``actions``, a row without an id or with a
            malformed action (the message names ``file:line``).
    """
    ann_file, root = Path(ann_file), Path(root)
    if not ann_file.is_file():
        raise AnnotationError(f"annotation file not found: {ann_file}")
    items = []
    with ann_file.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in ("id", "actions") if c not in header]
        if missing:
            raise AnnotationError(
                f"{ann_file}:1: expected a Charades header with 'id' and 'actions' columns "
                f"(id,subject,scene,...,actions,length), missing {missing}"
            )
        col_id, col_actions = header.index("id"), header.index("actions")
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            where = f"{ann_file}:{reader.line_num}"
            if len(row) <= max(col_id, col_actions):
                raise AnnotationError(f"{where}: expected {len(header)} columns as the header, got {len(row)}")
            vid = row[col_id].strip()
            if not vid:
                raise AnnotationError(f"{where}: empty id")
            actions = parse_charades_actions(row[col_actions], num_classes, where)
            rel_path = video_tmpl.format(id=vid)
            labels = sorted({a[0] for a in actions})
            items.append(VideoItem(str(root / rel_path), labels, rel_path=rel_path, meta={"actions": actions}))
    return items
