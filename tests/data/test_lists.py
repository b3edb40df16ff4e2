"""Official annotation files of the SEVERE datasets -> vidlab video lists (tiny files in each dataset's format)."""

import json

import pytest

from vidlab.data.datasets import AnnotationError, parse_video_list
from vidlab.data.lists import (
    FINEGYM_SUBSETS,
    diving48_list,
    finegym_list,
    hmdb51_list,
    ntu60_list,
    ssv2_list,
    ucf101_list,
    write_list,
)


def test_ucf101_labels_come_from_the_folder_and_classind(tmp_path):
    (tmp_path / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 HandstandPushups\r\n3 JumpRope\r\n")
    (tmp_path / "trainlist01.txt").write_bytes(
        b"HandstandPushups/v_HandStandPushups_g08_c01.avi 2\r\nApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi 1\r\n"
    )
    (tmp_path / "testlist01.txt").write_bytes(b"JumpRope/v_JumpRope_g01_c01.avi\r\n")
    rows = ucf101_list(tmp_path / "trainlist01.txt", tmp_path / "classInd.txt")
    assert rows == [
        ("HandstandPushups/v_HandStandPushups_g08_c01.avi", [1]),
        ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi", [0]),
    ]
    assert ucf101_list(tmp_path / "testlist01.txt", tmp_path / "classInd.txt") == [
        ("JumpRope/v_JumpRope_g01_c01.avi", [2])
    ]
    n = write_list(rows, tmp_path / "out" / "ucf101_train_split_1_videos.txt")
    assert n == 2
    items = parse_video_list(tmp_path / "out" / "ucf101_train_split_1_videos.txt", tmp_path)
    assert [it.label for it in items] == [[1], [0]]
    (tmp_path / "bad.txt").write_text("Rowing/v_Rowing_g01_c01.avi\n")
    with pytest.raises(AnnotationError, match=r"bad\.txt:1: class folder 'Rowing' is not in"):
        ucf101_list(tmp_path / "bad.txt", tmp_path / "classInd.txt")


def test_hmdb51_codes_and_sorted_classes(tmp_path):
    (tmp_path / "wave_test_split1.txt").write_text("w1.avi 1 \nw2.avi 2 \nw3.avi 0 \n")
    (tmp_path / "brush_hair_test_split1.txt").write_text("b1.avi 2 \nb2.avi 1 \n")
    (tmp_path / "brush_hair_test_split2.txt").write_text("b1.avi 1 \n")
    assert hmdb51_list(tmp_path, 1, "train") == [("brush_hair/b2.avi", [0]), ("wave/w1.avi", [1])]
    assert hmdb51_list(tmp_path, 1, "test", video_ext=".mp4") == [("brush_hair/b1.mp4", [0]), ("wave/w2.mp4", [1])]
    with pytest.raises(AnnotationError, match="no '\\*_test_split3.txt' files"):
        hmdb51_list(tmp_path, 3)
    (tmp_path / "wave_test_split1.txt").write_text("w1.avi 5\n")
    with pytest.raises(AnnotationError, match=r"wave_test_split1\.txt:1: expected 'video.avi 0\|1\|2'"):
        hmdb51_list(tmp_path, 1)


def test_ssv2_template_without_brackets(tmp_path):
    labels = {"Putting something on something": "1", "Pushing something from left to right": "0"}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    train = [
        {"id": "74225", "label": "putting a cup on a table", "template": "Putting [something] on [something]"},
        {"id": "3", "label": "pushing pen", "template": "Pushing [something] from left to right"},
    ]
    (tmp_path / "train.json").write_text(json.dumps(train))
    (tmp_path / "test.json").write_text(json.dumps([{"id": "1420"}]))
    assert ssv2_list(tmp_path / "train.json", tmp_path / "labels.json") == [("74225.webm", [1]), ("3.webm", [0])]
    assert ssv2_list(tmp_path / "train.json", tmp_path / "labels.json", "{id}.mp4")[0] == ("74225.mp4", [1])
    with pytest.raises(AnnotationError, match="no template: a test split"):
        ssv2_list(tmp_path / "test.json", tmp_path / "labels.json")


def test_ntu60_protocols_from_file_names():
    names = [
        "drink_water/S001C001P001R001A001_rgb.avi",  # subject 1 (xsub train), camera 1 (xview test)
        "S002C002P003R002A060_rgb.avi",  # subject 3 (xsub test), camera 2 (xview train)
        "S017C003P038R001A046_rgb.avi",  # subject 38 (xsub train), camera 3 (xview train)
    ]
    assert ntu60_list(names, "xsub", "train") == [(names[0], [0]), (names[2], [45])]
    assert ntu60_list(names, "xsub", "test") == [(names[1], [59])]
    assert ntu60_list(names, "xview", "train") == [(names[1], [59]), (names[2], [45])]
    assert ntu60_list(names, "xview", "test") == [(names[0], [0])]
    with pytest.raises(AnnotationError, match="A061 is not one of NTU-60's"):
        ntu60_list(["S018C001P008R001A061_rgb.avi"])
    with pytest.raises(AnnotationError, match="not an NTU RGB\\+D name"):
        ntu60_list(["video.avi"])


def test_finegym_subsets_renumber_gym99_labels(tmp_path):
    lines = [
        "A0x_E_002184_002237_A_0035_0036 93",
        "AZ4_E_003643_003675_A_0024_0026 6",
        "AZ4_E_004073_004175_A_0053_0054 16",
    ]
    (tmp_path / "gym99_train_element_v1.0.txt").write_text("\n".join(lines) + "\n")
    rows = finegym_list(tmp_path / "gym99_train_element_v1.0.txt")
    assert rows[0] == ("A0x_E_002184_002237_A_0035_0036.mp4", [93])
    fx = finegym_list(tmp_path / "gym99_train_element_v1.0.txt", keep=FINEGYM_SUBSETS["gym_set_FX_S1"])
    assert fx == [("AZ4_E_003643_003675_A_0024_0026.mp4", [0]), ("AZ4_E_004073_004175_A_0053_0054.mp4", [10])]
    ub = FINEGYM_SUBSETS["gym_set_UB_S1"]
    assert (ub[0], ub[-1], len(ub)) == (74, 88, 15)
    (tmp_path / "severe.txt").write_text("A0x_E_002184_002237_A_0035_0036.avi 80\n")  # SEVERE's lists carry .avi
    assert finegym_list(tmp_path / "severe.txt", "{id}", keep=ub) == [("A0x_E_002184_002237_A_0035_0036.avi", [6])]


def test_diving48_json(tmp_path):
    entries = [{"vid_name": "AbC_00042", "label": 7, "start_frame": 0, "end_frame": 63}]
    (tmp_path / "Diving48_V2_train.json").write_text(json.dumps(entries + [{"vid_name": "x"}]))
    with pytest.raises(AnnotationError, match="entry 1 has no vid_name / label"):
        diving48_list(tmp_path / "Diving48_V2_train.json")
    (tmp_path / "Diving48_V2_train.json").write_text(json.dumps(entries))
    assert diving48_list(tmp_path / "Diving48_V2_train.json") == [("AbC_00042.mp4", [7])]
