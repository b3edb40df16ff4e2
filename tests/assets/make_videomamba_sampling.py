"""Write tests/assets/sampling_videomamba.json: VideoMamba's long-video frame indices and trimmed windows, run from
its source.

Source: https://github.com/OpenGVLab/VideoMamba at commit f3427e42cb8453a523aec3a6f86d57b5bc1de5c3:

* ``videomamba/video_sm/datasets/kinetics_sparse.py`` (git blob 75468a43): ``VideoClsDataset_sparse._get_seq_frames``
  (whole-video sparse sampling, the Breakfast / COIN recipes);
* ``videomamba/video_sm/datasets/lvu.py`` (git blob 7300ab14): ``LVU.__init__`` (the trimmed windows of each video)
  and ``LVU._get_seq_frames`` (sparse sampling inside a window).

Nothing of VideoMamba is imported (the modules need decord / torchvision): the two methods and ``__init__`` are cut
out of the files with ``ast`` and run with stand-ins for what they touch (``self``, a tiny ``pandas.read_csv``).
Train mode draws with ``random.randint``; it is run with ``randint`` returning its low and then its high bound, so
the fixture records the range each index is drawn from.

Usage: python tests/assets/make_videomamba_sampling.py KINETICS_SPARSE_PY LVU_PY
"""

from __future__ import annotations

import ast
import json
import sys
import types
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("sampling_videomamba.json")


def _method(path: str, cls: str, name: str, namespace: dict):
    tree = ast.parse(Path(path).read_text())
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    fn = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == name)
    exec(compile(ast.Module([fn], []), path, "exec"), namespace)
    return namespace[name]


class _Random:
    """``random`` with ``randint`` fixed to one end of its range."""

    def __init__(self, end: str):
        self.end = end

    def randint(self, lo, hi):
        return lo if self.end == "low" else hi


def _sparse_cases(path: str) -> list[dict]:
    cases = []
    for total, frames in ((10, 8), (300, 32), (301, 32), (1000, 64), (33, 32), (7, 16), (1, 8), (2450, 64)):
        for tests in (1, 4, 10):
            self = types.SimpleNamespace(mode="test", test_num_segment=tests)
            case = {"total_frames": total, "num_frames": frames, "test_num_segment": tests, "test": []}
            for k in range(tests):
                ns = {"np": np, "random": _Random("low")}
                case["test"].append(
                    _method(path, "VideoClsDataset_sparse", "_get_seq_frames", ns)(self, total, frames, k)
                )
            for end in ("low", "high"):
                ns = {"np": np, "random": _Random(end)}
                self = types.SimpleNamespace(mode="train", test_num_segment=tests)
                case[f"train_{end}"] = _method(path, "VideoClsDataset_sparse", "_get_seq_frames", ns)(
                    self, total, frames
                )
            val_self = types.SimpleNamespace(mode="validation", test_num_segment=tests)
            ns = {"np": np, "random": _Random("low")}
            case["validation"] = _method(path, "VideoClsDataset_sparse", "_get_seq_frames", ns)(
                val_self, total, frames, 0
            )
            cases.append(case)
    return cases


def _window_cases(path: str) -> list[dict]:
    durations = [5, 59.5, 60, 61, 75, 89.9, 90, 91, 200, 200.5, 3600, 17.2]
    settings = [(60, 16), (30, 10), (10, 4)]
    cases = []
    for trimmed, stride in settings:
        table = np.array([[f"v{i}.mp4", i % 3, d] for i, d in enumerate(durations)], dtype=object)
        pandas = types.SimpleNamespace(read_csv=lambda *a, table=table, **k: types.SimpleNamespace(values=table))
        sys.modules["pandas"] = pandas
        ns = {"VideoReader": object, "has_client": False, "print": lambda *a, **k: None}
        init = _method(path, "LVU", "__init__", ns)
        self = types.SimpleNamespace()
        init(self, "x.csv", mode="train", args=types.SimpleNamespace(reprob=0), trimmed=trimmed, time_stride=stride)
        per_video: dict[str, list] = {}
        for name, s, e in zip(self.dataset_samples, self.start_array, self.end_array):
            per_video.setdefault(name, []).append([float(s), float(e)])
        for i, d in enumerate(durations):
            cases.append({"duration": d, "trimmed": trimmed, "time_stride": stride, "windows": per_video[f"v{i}.mp4"]})
    return cases


def _window_index_cases(path: str) -> list[dict]:
    cases = []
    for total, start, end, frames, tests in ((1800, 480, 1380, 32, 4), (1800, 1440, 1800, 32, 4), (400, 0, 450, 64, 2),
                                             (900, 899, 1200, 8, 3), (1000, 300, 300, 16, 1)):  # fmt: skip
        case = {"total_frames": total, "start": start, "end": end, "num_frames": frames, "test_num_segment": tests}
        self = types.SimpleNamespace(mode="test", test_num_segment=tests)
        case["test"] = [
            _method(path, "LVU", "_get_seq_frames", {"np": np, "random": _Random("low")})(
                self, total, start, end, frames, k
            )
            for k in range(tests)
        ]
        for which in ("low", "high"):
            self = types.SimpleNamespace(mode="train", test_num_segment=tests)
            fn = _method(path, "LVU", "_get_seq_frames", {"np": np, "random": _Random(which)})
            case[f"train_{which}"] = fn(self, total, start, end, frames)
        cases.append(case)
    return cases


def main() -> None:
    sparse_py, lvu_py = sys.argv[1:3]
    doc = {
        "source": "OpenGVLab/VideoMamba f3427e42 videomamba/video_sm/datasets/{kinetics_sparse,lvu}.py",
        "sparse": _sparse_cases(sparse_py),
        "windows": _window_cases(lvu_py),
        "window_indices": _window_index_cases(lvu_py),
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
