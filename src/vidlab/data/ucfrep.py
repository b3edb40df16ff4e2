"""UCFRep repetition-count annotations (``.mat``) -> vidlab's ``path count`` lists (``task: counting``).

UCFRep (Zhang et al., "Context-aware and Scale-insensitive Temporal Repetition Counting", CVPR 2020) annotates 526
UCF101 videos of 23 classes: ``ucf526_annotations.zip`` holds ``annotations/train/*.mat`` (421) and
``annotations/val/*.mat`` (105), one per video, named after it (``v_JumpRope_g01_c01.mat``). Each is a MATLAB v5
file with one struct ``label``: ``start_frame``, ``end_frame``, ``duration`` (= end - start + 1), ``temporal_bound``
(the 1-based frame numbers of the cycle boundaries, first = ``start_frame``, last = ``end_frame``),
``temporal_bound_num`` and the per-frame ``offset_next_estimate`` / ``offset_pre_estimate`` the reference trains
its tracking on. The count is ``len(temporal_bound) - 1``; the reference skips videos with fewer than 3 boundaries
or a non-positive duration (none in the release).

Reading ``.mat`` files needs scipy (``pip install scipy``); nothing else in vidlab does.

Command line: ``python -m vidlab.data.ucfrep ANN_DIR OUT.txt [--video-root UCF101_DIR]``.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
from pathlib import Path

from vidlab.data.datasets import AnnotationError
from vidlab.errors import MissingDependencyError

__all__ = ["UCFRepAnnotation", "read_ucfrep_annotations", "read_ucfrep_mat", "write_ucfrep_list"]

#: UCF101 file names whose class part differs from the class folder (``v_HandStandPushups_g01_c01.avi`` lives in
#: ``HandstandPushups/``)
UCF101_FOLDERS = {"HandStandPushups": "HandstandPushups"}


@dataclasses.dataclass
class UCFRepAnnotation:
    """One annotated video.

    Attributes:
        video: the video's name, ``v_<Class>_gGG_cCC``.
        start_frame, end_frame: the annotated span, 1-based frame numbers (inclusive).
        bounds: the cycle boundaries, 1-based frame numbers.
    """

    video: str
    start_frame: int
    end_frame: int
    bounds: list[int]

    @property
    def count(self) -> int:
        """Repetitions: boundaries - 1."""
        return len(self.bounds) - 1

    @property
    def class_name(self) -> str:
        """The UCF101 class folder (``video[2:-8]``, as the reference reads it, with :data:`UCF101_FOLDERS`)."""
        name = self.video[2:-8]
        return UCF101_FOLDERS.get(name, name)


def _loadmat():
    try:
        from scipy.io import loadmat
    except ImportError:
        raise MissingDependencyError("reading UCFRep's .mat annotations needs scipy: pip install scipy") from None
    return loadmat


def read_ucfrep_mat(path: str | Path) -> UCFRepAnnotation:
    """One UCFRep ``.mat`` file -> :class:`UCFRepAnnotation` (the video is the file's stem).

    Raises:
        ImportError: scipy is not installed.
        AnnotationError: not a readable MATLAB file, or no ``label`` struct with ``start_frame``, ``end_frame``
            and ``temporal_bound``.
    """
    loadmat, path = _loadmat(), Path(path)
    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy's MatReadError, a missing file, a truncated or foreign file
        raise AnnotationError(f"{path}: cannot read it as a MATLAB (v5) file: {e}") from e
    try:
        label = mat["label"][0, 0]
        start, end = int(label["start_frame"].ravel()[0]), int(label["end_frame"].ravel()[0])
        bounds = [int(b) for b in label["temporal_bound"].ravel()]
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise AnnotationError(
            f"{path}: not a UCFRep annotation (a MATLAB struct 'label' with start_frame, end_frame and "
            f"temporal_bound): {e}"
        ) from e
    return UCFRepAnnotation(path.stem, start, end, bounds)


def read_ucfrep_annotations(ann_dir: str | Path) -> list[UCFRepAnnotation]:
    """Every ``*.mat`` file of ``ann_dir`` (e.g. ``annotations/train``), sorted by name as the reference lists them."""
    ann_dir = Path(ann_dir)
    files = sorted(ann_dir.glob("*.mat"))
    if not files:
        raise AnnotationError(f"{ann_dir}: no .mat files (give annotations/train or annotations/val of UCFRep)")
    return [read_ucfrep_mat(f) for f in files]


def write_ucfrep_list(
    ann_dir: str | Path,
    out: str | Path,
    *,
    video_tmpl: str = "{cls}/{video}.avi",
    video_root: str | Path | None = None,
    segments: str | Path | None = None,
) -> dict:
    """Write the ``path count`` list of a UCFRep annotation folder, the targets of ``task: counting`` (paths relative
    to the UCF101 video folder, the run's ``data.root``).

    Videos with fewer than two repetitions or a non-positive span are skipped as the reference skips them; with
    ``video_root``, so are videos whose file is missing there (the reference skips those too).

    Args:
        ann_dir: a folder of UCFRep ``.mat`` files (``annotations/train`` or ``annotations/val``).
        out: the list to write.
        video_tmpl: a video's path under the video root, formatted with ``cls`` (the UCF101 class folder) and
            ``video`` (``v_Class_gGG_cCC``); the default is UCF101's ``Class/v_Class_gGG_cCC.avi``.
        video_root: if given, only videos whose file exists under it are written.
        segments: if given, also write a CSV ``path,start_frame,end_frame,count`` (1-based frames, inclusive) of
            the annotated spans, e.g. to cut the videos to them beforehand.

    Returns:
        ``{"written": n, "skipped_few_cycles": [videos], "missing": [paths]}``.
    """
    rows, few, missing = [], [], []
    for ann in read_ucfrep_annotations(ann_dir):
        if ann.count < 2 or ann.end_frame < ann.start_frame:
            few.append(ann.video)
            continue
        rel = video_tmpl.format(cls=ann.class_name, video=ann.video)
        if video_root is not None and not (Path(video_root) / rel).is_file():
            missing.append(rel)
            continue
        rows.append((rel, ann))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{rel} {ann.count}\n" for rel, ann in rows))
    if segments is not None:
        with Path(segments).open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "start_frame", "end_frame", "count"])
            writer.writerows([rel, ann.start_frame, ann.end_frame, ann.count] for rel, ann in rows)
    return {"written": len(rows), "skipped_few_cycles": few, "missing": missing}


def main(argv: list[str] | None = None) -> None:
    """``python -m vidlab.data.ucfrep ANN_DIR OUT.txt [...]``: the same as ``vidlab data ucfrep-list``."""
    from vidlab.cli import main as cli_main

    cli_main(["data", "ucfrep-list", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
