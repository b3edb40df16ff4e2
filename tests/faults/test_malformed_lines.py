"""Every malformed line type of every list format vidlab reads: an AnnotationError naming the file, the line and what
was expected (docs/RELIABILITY.md). AVA's CSVs and label maps have their own cases in tests/metrics/test_ava_eval.py
and tests/data/test_ava_data.py."""

import pytest

from vidlab.data.charades import parse_charades_csv
from vidlab.data.datasets import AnnotationError, parse_kinetics_csv, parse_rawframe_list, parse_video_list
from vidlab.data.longterm import parse_videomamba_csv

KINETICS_HEADER = "label,youtube_id,time_start,time_end,split"
CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"

READERS = {
    "video": (lambda f: parse_video_list(f, "root", num_classes=5, target_type="class"), None),
    "rawframes": (lambda f: parse_rawframe_list(f, "root", num_classes=5, target_type="class"), None),
    "kinetics_csv": (lambda f: parse_kinetics_csv(f, "root", ["abc", "d"]), KINETICS_HEADER),
    "videomamba_csv": (lambda f: parse_videomamba_csv(f, "root", num_classes=5, target_type="class"), None),
    "charades_csv": (lambda f: parse_charades_csv(f, "root", num_classes=157), CHARADES_HEADER),
}

# (format, bad line, what the message says)
CASES = [
    ("video", "a.mp4", "expected 'path label'"),
    ("video", "a.mp4 x", "labels must be integers"),
    ("video", "a.mp4 1.5", "labels must be integers"),
    ("video", "a.mp4 9", "label 9 out of range [0, 5)"),
    ("video", "a.mp4 -1", "label -1 out of range"),
    ("video", "a.mp4 1 2", "expected 'path label'"),
    ("rawframes", "a", "expected 'frame_dir total_frames label'"),
    ("rawframes", "a 10", "expected 'frame_dir total_frames label'"),
    ("rawframes", "a x 1", "total_frames must be a positive integer"),
    ("rawframes", "a -3 1", "total_frames must be a positive integer"),
    ("rawframes", "a 10 x", "labels must be integers"),
    ("rawframes", "a 10 9", "label 9 out of range"),
    ("kinetics_csv", "zzz,aa,0,10,train", "label 'zzz' is not in the label map"),
    ("kinetics_csv", "abc,aa,x,10,train", "time_start/time_end must be numbers"),
    ("kinetics_csv", "abc,aa,0", "expected at least 5 columns"),
    ("videomamba_csv", "a.mp4", "expected 'path,label[,duration]'"),
    ("videomamba_csv", "a.mp4,x", "labels must be integers"),
    ("videomamba_csv", "a.mp4,9", "label 9 out of range"),
    ("videomamba_csv", "a.mp4,1,abc", "duration must be seconds"),
    ("videomamba_csv", "a.mp4,1,-5", "duration must be >= 0 seconds"),
    ("charades_csv", "A,1,k,5,5,Yes,s,o,d,c999 0.0 1.0,10", "action class c999 out of range"),
    ("charades_csv", "A,1,k,5,5,Yes,s,o,d,c001 x 1.0,10", "start and end must be seconds"),
]


@pytest.mark.parametrize("fmt,line,expected", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_a_malformed_line_names_file_line_and_expectation(tmp_path, fmt, line, expected):
    read, header = READERS[fmt]
    path = tmp_path / "list.txt"
    good = {"video": "ok.mp4 1", "rawframes": "ok 10 1", "kinetics_csv": "abc,bb,0,10,train",
            "videomamba_csv": "ok.mp4,1,30", "charades_csv": "B,1,k,5,5,Yes,s,o,d,c001 0.0 1.0,10"}[fmt]  # fmt: skip
    rows = ([header] if header else []) + [good, line]  # the bad line comes after a good one
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(AnnotationError) as e:
        read(path)
    assert f"{path}:{len(rows)}: " in str(e.value) and expected in str(e.value)


def test_blank_lines_are_skipped_and_an_empty_list_is_empty(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("\nok.mp4 1\n\n")
    assert [item.rel_path for item in parse_video_list(path, "root", num_classes=5)] == ["ok.mp4"]
