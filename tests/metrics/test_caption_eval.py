"""``vidlab caption-eval``: MicroG-4M's ground truth and the prediction formats, VQA keying, coverage, the table and
the RESULT line, and errors that name the file and the entry."""

import json

import pytest

from vidlab.cli import main
from vidlab.metrics import caption_scores
from vidlab.metrics.caption.evaluate import CaptionInputError, read_ground_truth, read_predictions

GT = [
    {"video_id": "v1", "caption": "An astronaut floats inside the station module.",
     "qa_pairs": [{"Q": "What is the astronaut doing? ", "A": " Floating inside the module."},
                  {"Q": "How many people are visible?", "A": "One."}]},
    {"video_id": "v2", "caption": "Two crew members talk near the window.",
     "qa_pairs": [{"Q": "Where are they?", "A": "Near the window."}]},
    {"video_id": 3, "caption": "A man holds a red cable  near a panel.", "qa_pairs": []},
    {"video_id": "v4", "caption": "The camera moves slowly along the module.",
     "qa_pairs": [{"Q": "What moves?", "A": "The camera."}]},
]  # fmt: skip
CAPTIONS = {"v1": "An astronaut is floating in the module.", "v2": "Two people talk by a window.",
            "3": "a man holds a cable", "v9": "not in the ground truth"}  # fmt: skip


@pytest.fixture
def gt_file(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(GT))
    return path


def _run(capsys, *args) -> tuple[list[str], dict]:
    main(["caption-eval", *map(str, args)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("RESULT ")
    return lines, {k: float(v) for k, v in (item.split("=") for item in lines[-1].split()[1:])}


def _table_row(lines: list[str]) -> dict:
    head = next(i for i, line in enumerate(lines) if line.startswith("| Model"))
    keys = [c.strip() for c in lines[head].strip("|").split("|")]
    return dict(zip(keys, (c.strip() for c in lines[head + 2].strip("|").split("|"))))


@pytest.mark.parametrize("form", ["microg_dict", "list", "csv"])
def test_caption_task(tmp_path, gt_file, capsys, form):
    pred = tmp_path / ("pred.csv" if form == "csv" else "pred.json")
    if form == "microg_dict":
        pred.write_text(json.dumps(CAPTIONS))
    elif form == "list":
        pred.write_text(json.dumps([{"video_id": k, "caption": v} for k, v in CAPTIONS.items()]))
    else:
        pred.write_text("video_id,caption\n" + "".join(f'{k},"{v}"\n' for k, v in CAPTIONS.items()))
    lines, result = _run(capsys, "--gt", gt_file, "--pred", pred, "--metrics", "bleu", "cider", "rouge")
    refs = {str(g["video_id"]): [g["caption"]] for g in GT if str(g["video_id"]) in CAPTIONS}
    expected = caption_scores(refs, {k: CAPTIONS[k] for k in refs}, ("bleu", "cider", "rouge"))
    assert list(result) == list(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=5e-7)
    out = "\n".join(lines)
    assert "3 of 4 ground-truth videos have a prediction (75.0%)" in out
    assert "videos without a prediction (not scored) (1):\n  v4" in out
    assert "predictions matching no ground truth (ignored) (1):\n  v9" in out
    row = _table_row(lines)
    assert list(row) == ["Model", "Cider", "Bleu-4", "Rouge-L", "Meteor", "S-BERT", "BERTScore"]
    assert row["Cider"] == f"{expected['CIDEr'] * 100:.2f}" and row["Rouge-L"] == f"{expected['ROUGE-L'] * 100:.2f}"
    assert row["Bleu-4"] == f"{expected['BLEU-4'] * 100:.2f}" and row["Meteor"] == "-" and row["Model"] == "pred"


def test_vqa_keying_and_microg_prediction_layout(tmp_path, gt_file, capsys):
    pred = tmp_path / "answers.json"
    pred.write_text(json.dumps([
        {"video_id": "v1", "qa_pairs": [{"Q": "What is the astronaut doing?", "A": "Floating in the module. "},
                                        {"Q": "How many people are visible?"}]},
        {"video_id": "v2", "qa_pairs": [{"Q": " Where are they?", "A": "By the window."},
                                        {"Q": "Unknown question?", "A": "x"}]},
    ]))  # fmt: skip
    lines, result = _run(capsys, "--gt", gt_file, "--pred", pred, "--task", "vqa", "--metrics", "bleu,rouge", "cider",
                         "--name", "GPT-4o")  # fmt: skip
    refs = {"a": ["Floating inside the module."], "b": ["One."], "c": ["Near the window."]}
    hyps = {"a": "Floating in the module.", "b": "", "c": "By the window."}  # stripped; absent answer: empty
    expected = caption_scores(refs, hyps, ("bleu", "cider", "rouge"))
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=5e-7)
    out = "\n".join(lines)
    assert "vqa: 3 of 4 ground-truth questions have a prediction (75.0%)" in out
    assert "questions without a prediction (not scored) (1):\n  v4 | What moves?" in out
    assert "v2 | Unknown question?" in out and "1 questions without an answer, scored as empty answers" in out
    row = _table_row(lines)
    assert "S-VQA" in row and "S-BERT" not in row and row["Model"] == "GPT-4o"


def test_vqa_flat_prediction_files(tmp_path, gt_file):
    rows = [("v1", "What is the astronaut doing?", "floating"), ("v2", "Where are they?", "near the window"),
            ("v2", "Where are they?", "by the window")]  # fmt: skip
    (tmp_path / "p.json").write_text(json.dumps([{"video_id": v, "question": q, "answer": a} for v, q, a in rows]))
    (tmp_path / "p.csv").write_text("video_id,question,answer\n" + "".join(f"{v},{q},{a}\n" for v, q, a in rows))
    for name in ("p.json", "p.csv"):
        answers, notes = read_predictions(tmp_path / name, "vqa")
        assert answers == {
            ("v1", "What is the astronaut doing?"): "floating",
            ("v2", "Where are they?"): "by the window",
        }
        assert notes == [f"{tmp_path / name}: 1 repeated keys; the last one counts"]
    refs, notes = read_ground_truth(gt_file, "vqa")
    assert refs[("v1", "What is the astronaut doing?")] == ["Floating inside the module."] and not notes


def test_strict_and_nothing_to_score(tmp_path, gt_file, capsys):
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(CAPTIONS))
    with pytest.raises(SystemExit) as e:
        main(["caption-eval", "--gt", str(gt_file), "--pred", str(pred), "--metrics", "bleu", "--strict"])
    assert e.value.code == 2 and "1 ground-truth videos have no prediction (--strict)" in capsys.readouterr().err
    pred.write_text(json.dumps({"zz": "x"}))
    with pytest.raises(SystemExit):
        main(["caption-eval", "--gt", str(gt_file), "--pred", str(pred), "--metrics", "bleu"])
    assert "no prediction matches an item" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["caption-eval", "--gt", str(gt_file), "--pred", str(pred), "--metrics", "spice"])
    assert "unknown caption metric 'spice'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, text, task, message",
    [
        ("gt.json", '[{"video_id": "a", "caption": "x"},\n {"video_id": "b", caption: 1}]', "caption",
         r"gt.json: not valid JSON \(line 2, column 20\)"),
        ("gt.json", '{"video_id": "a"}', "caption", "gt.json: expected a JSON list of objects, got a dict"),
        ("gt.json", '[{"video_id": "a", "caption": "x"}, {"video_id": "b"}]', "caption",
         "gt.json: entry 1: 'caption' must be a string, got missing"),
        ("gt.json", '[{"video_id": null, "caption": "x"}]', "caption", "gt.json: entry 0: 'video_id' must be"),
        ("gt.json", '[{"video_id": "a", "qa_pairs": [{"Q": "q", "A": 3}]}]', "vqa",
         r"gt.json: entry 0, qa_pairs\[0\]: 'A' must be a string, got a int"),
        ("gt.json", '[{"video_id": "a", "caption": "x"}]', "vqa", "gt.json: entry 0: 'qa_pairs' must be a list"),
        ("pred.csv", "video_id,text\na,b\n", "caption", r"pred.csv: the header \(line 1\) must name video_id, caption"),
        ("pred.csv", "video_id,question,answer\na,q,x\nb,q\n", "vqa", "pred.csv: line 3: fewer fields"),
        ("pred.json", '{"a": 3}', "caption", "pred.json: key 'a': 'caption' must be a string"),
        ("pred.json", '[{"video_id": "a", "answer": "x"}]', "vqa", "pred.json: entry 0: 'question' must be a string"),
    ],
)  # fmt: skip
def test_malformed_files_name_the_file_and_entry(tmp_path, name, text, task, message):
    path = tmp_path / name
    path.write_text(text)
    reader = read_ground_truth if name.startswith("gt") else read_predictions
    with pytest.raises(CaptionInputError, match=message):
        reader(path, task)


def test_missing_file_exits_with_a_message(tmp_path, gt_file, capsys):
    with pytest.raises(SystemExit) as e:
        main(["caption-eval", "--gt", str(gt_file), "--pred", str(tmp_path / "none.json"), "--metrics", "bleu"])
    assert e.value.code == 2 and "none.json: no such file" in capsys.readouterr().err
