import pytest

from vidlab.data.datasets import (
    AnnotationError,
    parse_kinetics_csv,
    parse_rawframe_list,
    parse_video_list,
    read_label_map,
)


def test_video_list_single_and_multi_label(tmp_path):
    ann = tmp_path / "list.txt"
    ann.write_text("a/x.mp4 3\n\n# comment\nb/y.mp4 1\n")
    items = parse_video_list(ann, tmp_path, num_classes=5)
    assert [i.label for i in items] == [[3], [1]]
    assert items[0].path == str(tmp_path / "a/x.mp4")
    ann.write_text("a/x.mp4 3 4\n")
    assert parse_video_list(ann, tmp_path, multi_label=True)[0].label == [3, 4]


@pytest.mark.parametrize(
    "text, lineno, what",
    [
        ("ok.mp4 1\nbroken.mp4\n", 2, "expected 'path label'"),
        ("ok.mp4 1\nx.mp4 one\n", 2, "labels must be integers"),
        ("x.mp4 1 2\n", 1, "expected 'path label'"),
        ("x.mp4 9\n", 1, "out of range"),
    ],
)
def test_video_list_errors_name_file_and_line(tmp_path, text, lineno, what):
    ann = tmp_path / "train.txt"
    ann.write_text(text)
    with pytest.raises(AnnotationError, match=rf"train.txt:{lineno}: .*{what}"):
        parse_video_list(ann, tmp_path, num_classes=5)


def test_rawframe_list(tmp_path):
    ann = tmp_path / "raw.txt"
    ann.write_text("v1 30 2\nv2 12 0\n")
    items = parse_rawframe_list(ann, tmp_path)
    assert items[0].total_frames == 30 and items[1].label == [0]
    ann.write_text("v1 thirty 2\n")
    with pytest.raises(AnnotationError, match=r"raw.txt:1: total_frames"):
        parse_rawframe_list(ann, tmp_path)


def test_kinetics_csv(tmp_path):
    ann = tmp_path / "kinetics_val.csv"
    ann.write_text(
        "label,youtube_id,time_start,time_end,split,is_cc\n"
        '"air drumming",AbC123xyz_0,40,50,val,0\n'
        "abseiling,Zz9,7,17,val,0\n"
    )
    items = parse_kinetics_csv(ann, tmp_path)
    assert items[0].path == str(tmp_path / "air_drumming" / "AbC123xyz_0_000040_000050.mp4")
    assert [i.label[0] for i in items] == [1, 0]  # sorted class names
    items = parse_kinetics_csv(ann, tmp_path, classes=["air drumming", "abseiling"])
    assert [i.label[0] for i in items] == [0, 1]
    ann.write_text("label,youtube_id,time_start,time_end,split\nabseiling,Zz9,7\n")
    with pytest.raises(AnnotationError, match=r"kinetics_val.csv:2: expected at least 5 columns"):
        parse_kinetics_csv(ann, tmp_path)


def test_missing_files(tmp_path):
    with pytest.raises(AnnotationError, match="annotation file not found"):
        parse_video_list(tmp_path / "nope.txt", tmp_path)
    with pytest.raises(AnnotationError, match="label map not found"):
        read_label_map(tmp_path / "nope.txt")
