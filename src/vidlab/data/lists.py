"""Official annotation files of the SEVERE benchmark's datasets -> vidlab video lists (``path label`` lines).

Each ``*_list`` function reads a dataset's own files and returns rows ``(path, labels)`` (labels: a list of 0-based
class indices, one for single-label datasets), in the order of the source file; :func:`write_list` writes them.
Labels follow what MMAction2 and SEVERE do for the dataset (docs/DATA.md, "Benchmark datasets"). Nothing here touches
the videos: give the paths the way your copy of the videos is laid out (``video_tmpl``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from vidlab.data.datasets import AnnotationError
from vidlab.errors import InputError

__all__ = [
    "FINEGYM_SUBSETS",
    "NTU60_XSUB_TRAIN_SUBJECTS",
    "NTU60_XVIEW_TRAIN_CAMERAS",
    "diving48_list",
    "finegym_list",
    "hmdb51_list",
    "ntu60_list",
    "ssv2_list",
    "ucf101_list",
    "write_list",
]

Rows = list[tuple[str, list[int]]]

#: SEVERE's FineGym tasks as the Gym99 labels they keep (renumbered 0.. in this order)
FINEGYM_SUBSETS = {
    "gym_event_vault": tuple(range(0, 6)),
    "gym_event_floor_exercise": tuple(range(6, 41)),
    "gym_set_FX_S1": tuple(range(6, 17)),
    "gym_set_UB_S1": tuple(range(74, 89)),
}

#: NTU RGB+D 60 cross-subject protocol: the performers (``Pppp``) of the training set
NTU60_XSUB_TRAIN_SUBJECTS = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
#: NTU RGB+D 60 cross-view protocol: the cameras (``Cccc``) of the training set (camera 1 is the test set)
NTU60_XVIEW_TRAIN_CAMERAS = frozenset({2, 3})

_NTU_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


def write_list(rows: Iterable[tuple[str, list[int]]], out: str | Path) -> int:
    """Write ``path l1 [l2 ...]`` lines; returns the number written."""
    lines = [f"{path} {' '.join(str(int(label)) for label in labels)}\n" for path, labels in rows]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(lines))
    return len(lines)


def _read_lines(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):  # splitlines: CRLF files too
        if raw.strip():
            yield lineno, raw.split()


def ucf101_list(split_file: str | Path, class_ind: str | Path) -> Rows:
    """UCF101 ``trainlist0k.txt`` / ``testlist0k.txt`` -> rows; the label is the 1-based ``classInd.txt`` index of
    the path's folder minus 1 (a train list's second column is ignored, as MMAction2 and SEVERE ignore it)."""
    classes = {}
    for lineno, fields in _read_lines(class_ind):
        if len(fields) != 2 or not fields[0].isdigit():
            raise AnnotationError(f"{class_ind}:{lineno}: expected 'index ClassName', got {' '.join(fields)!r}")
        classes[fields[1]] = int(fields[0]) - 1
    rows = []
    for lineno, fields in _read_lines(split_file):
        folder = fields[0].split("/")[0]
        if folder not in classes:
            raise AnnotationError(f"{split_file}:{lineno}: class folder {folder!r} is not in {class_ind}")
        rows.append((fields[0], [classes[folder]]))
    return rows


def hmdb51_list(splits_dir: str | Path, split: int = 1, subset: str = "train", video_ext: str = "") -> Rows:
    """HMDB51 ``testTrainMulti_7030_splits/<class>_test_split<k>.txt`` -> rows ``<class>/<file>``.

    Code 1 in the files is train, 2 test, 0 unused; the label is the class's index in the sorted class names
    (SEVERE sorts the video folders; MMAction2's classInd gives the same order).

    Args:
        splits_dir: the folder of the 153 split files.
        split: 1, 2 or 3.
        subset: ``train`` or ``test``.
        video_ext: replaces the files' ``.avi`` if given (e.g. ``.mp4`` for re-encoded videos).
    """
    if subset not in ("train", "test") or split not in (1, 2, 3):
        raise InputError(f"HMDB51 has splits 1-3 and subsets train/test, got split={split}, subset={subset!r}")
    files = sorted(Path(splits_dir).glob(f"*_test_split{split}.txt"))
    if not files:
        raise AnnotationError(f"{splits_dir}: no '*_test_split{split}.txt' files (HMDB51's testTrainMulti_7030_splits)")
    code = {"train": "1", "test": "2"}[subset]
    classes = sorted(f.name[: -len(f"_test_split{split}.txt")] for f in files)
    rows = []
    for label, cls in enumerate(classes):
        path = Path(splits_dir) / f"{cls}_test_split{split}.txt"
        for lineno, fields in _read_lines(path):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{path}:{lineno}: expected 'video.avi 0|1|2', got {' '.join(fields)!r}")
            if fields[1] == code:
                name = str(Path(fields[0]).with_suffix(video_ext)) if video_ext else fields[0]
                rows.append((f"{cls}/{name}", [label]))
    return rows


def ssv2_list(json_file: str | Path, labels_json: str | Path, video_tmpl: str = "{id}.webm") -> Rows:
    """Something-Something v2 ``something-something-v2-{train,validation}.json`` -> rows.

    The class is ``labels[template without its brackets]`` (``"Putting [something] on [something]"`` -> ``"Putting
    something on something"``), as MMAction2, PySlowFast and SEVERE read it; the labels JSON maps names to string
    indices.
    """
    labels = {name: int(index) for name, index in json.loads(Path(labels_json).read_text()).items()}
    rows = []
    for i, entry in enumerate(json.loads(Path(json_file).read_text())):
        if "template" not in entry:
            raise AnnotationError(f"{json_file}: entry {i} (id {entry.get('id')!r}) has no template: a test split?")
        name = entry["template"].replace("[", "").replace("]", "")
        if name not in labels:
            raise AnnotationError(f"{json_file}: entry {i}: template {name!r} is not in {labels_json}")
        rows.append((video_tmpl.format(id=entry["id"]), [labels[name]]))
    return rows


def ntu60_list(paths: Iterable[str], protocol: str = "xsub", subset: str = "train") -> Rows:
    """NTU RGB+D 60 videos named ``SsssCcccPpppRrrrAaaa_rgb.avi`` -> rows of one protocol's subset.

    The label is the action ``Aaaa`` minus 1. ``xsub`` (cross-subject) trains on the performers
    :data:`NTU60_XSUB_TRAIN_SUBJECTS`; ``xview`` (cross-view) trains on cameras 2 and 3 and tests on camera 1.

    Args:
        paths: video paths relative to the data root (e.g. every file of the video folder, or SEVERE's
            ``trainlist01.txt`` entries); those of the other subset are left out.
    """
    if protocol not in ("xsub", "xview") or subset not in ("train", "test"):
        raise InputError(f"protocol must be xsub or xview and subset train or test, got {protocol!r}, {subset!r}")
    rows = []
    for path in paths:
        path = path.strip()
        if not path:
            continue
        m = _NTU_NAME.search(Path(path).name)
        if m is None:
            raise AnnotationError(f"{path}: not an NTU RGB+D name (SsssCcccPpppRrrrAaaa)")
        camera, subject, action = int(m.group(2)), int(m.group(3)), int(m.group(5))
        if not 1 <= action <= 60:
            raise AnnotationError(f"{path}: action A{action:03d} is not one of NTU-60's A001-A060")
        train = subject in NTU60_XSUB_TRAIN_SUBJECTS if protocol == "xsub" else camera in NTU60_XVIEW_TRAIN_CAMERAS
        if train == (subset == "train"):
            rows.append((path, [action - 1]))
    return rows


def finegym_list(element_file: str | Path, video_tmpl: str = "{id}.mp4", keep: Iterable[int] | None = None) -> Rows:
    """FineGym ``gym{99,288}_{train,val}_element*.txt`` (``<clip id> <label>``) -> rows.

    Args:
        element_file: the element list (SEVERE's ``gym99_train.txt`` too: its ids end in ``.avi``, so give
            ``video_tmpl="{id}"``).
        video_tmpl: a clip's path, formatted with ``id``.
        keep: Gym99 labels to keep, renumbered 0.. in this order (:data:`FINEGYM_SUBSETS`: SEVERE's FX-S1 keeps 6-16,
            UB-S1 74-88); None keeps all.
    """
    index = None if keep is None else {int(lab): k for k, lab in enumerate(keep)}
    rows = []
    for lineno, fields in _read_lines(element_file):
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise AnnotationError(f"{element_file}:{lineno}: expected '<clip id> <label>', got {' '.join(fields)!r}")
        label = int(fields[1])
        if index is None or label in index:
            rows.append((video_tmpl.format(id=fields[0]), [label if index is None else index[label]]))
    return rows


def diving48_list(json_file: str | Path, video_tmpl: str = "{vid_name}.mp4") -> Rows:
    """Diving48 ``Diving48_V2_{train,test}.json`` (``{"vid_name", "label", "start_frame", "end_frame"}``) -> rows;
    the whole video is used (``start_frame`` / ``end_frame`` are ignored, as MMAction2 and SEVERE ignore them)."""
    rows = []
    for i, entry in enumerate(json.loads(Path(json_file).read_text())):
        if "vid_name" not in entry or "label" not in entry:
            raise AnnotationError(f"{json_file}: entry {i} has no vid_name / label: {entry!r}")
        rows.append((video_tmpl.format(vid_name=entry["vid_name"]), [int(entry["label"])]))
    return rows
