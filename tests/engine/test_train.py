"""End-to-end runs of the real CLI on real H.264 files: train, test, predict, resume, error paths."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO, run_cli, write_tiny_recipe

# the training run of test_train_test_predict_end_to_end is also the uninterrupted run that
# test_resume_after_kill_is_bitwise_identical compares a killed and resumed run with (module fixture `trained`)
RESUMABLE = ["train.deterministic=true", "train.max_iters_per_epoch=4", "train.epochs=2", "data.num_workers=1"]


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def trained(synth_tiny, tmp_path_factory):
    """``(recipe, work_dir, result)`` of one `vidlab train` of the tiny recipe: 2 epochs of 4 iterations,
    deterministic, one loader worker."""
    tmp = tmp_path_factory.mktemp("trained")
    recipe, work = write_tiny_recipe(synth_tiny, tmp / "tiny.yaml"), tmp / "run"
    return recipe, work, run_cli("train", str(recipe), *RESUMABLE, f"work_dir={work}")


def test_train_test_predict_end_to_end(trained, synth_tiny, tmp_path, cli_inprocess):
    """train, test and predict on the command line; predict and test again from the checkpoint alone, in-process."""
    tiny_recipe, work, r = trained
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT top1=") and "minutes=" in last
    for name in ("best.pth", "epoch_2.pth", "config.yaml", "metrics.jsonl", "curves.png", "confusion_val.png"):
        assert (work / name).is_file(), name
    history = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2] and all("val_top1" in h for h in history)
    assert {h["precision"] for h in history} <= {"fp32", "bf16"}  # recorded with the metrics

    out = tmp_path / "results.json"
    r = run_cli("test", str(tiny_recipe), "--checkpoint", str(work / "best.pth"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("RESULT top1=")
    from vidlab.engine.evaluate import read_results

    doc = read_results(out)
    n_test = len((synth_tiny / "test.txt").read_text().split())
    assert doc["scores"].shape[0] == len(doc["videos"]) == len(doc["labels"]) == n_test // 2
    assert abs(doc["scores"].sum(1) - 1).max() < 1e-4  # average_clips=prob
    top1 = float((doc["scores"].argmax(1) == doc["labels"]).mean())
    assert abs(top1 - doc["metrics"]["top1"]) < 1e-9

    video = synth_tiny / (synth_tiny / "test.txt").read_text().split()[0]
    names = (synth_tiny / "label_map.txt").read_text().split()
    outputs = []
    for config, cli in ((["--config", str(tiny_recipe)], run_cli), ([], cli_inprocess)):  # recipe; checkpoint alone
        r = cli("predict", str(video), *config, "--checkpoint", str(work / "best.pth"))
        assert r.returncode == 0, r.stderr
        lines = [line.split() for line in r.stdout.splitlines()]
        assert [int(line[0]) for line in lines] == [1, 2, 3, 4, 5]
        assert all(line[1] in names for line in lines)
        probs = [float(line[2]) for line in lines]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
        outputs.append({line[1]: float(line[2]) for line in lines})
    # the same predictions; two processes may differ in the last printed digit (fp32 sums in another order), and
    # a class whose probability is within that of the 5th may swap with the 6th
    common = outputs[0].keys() & outputs[1].keys()
    assert len(common) >= 4 and all(abs(outputs[0][k] - outputs[1][k]) <= 2e-4 for k in common), outputs

    # `vidlab test` from the checkpoint alone gives the metrics of the recipe's test run
    r = cli_inprocess("test", "--checkpoint", str(work / "best.pth"), "--list", "test.txt", "--root", str(synth_tiny))
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT top1=")
    assert last.split(" minutes=")[
        0
    ] == f"RESULT top1={doc['metrics']['top1']:.4f} top5={doc['metrics']['top5']:.4f} " + (
        f"mean_class_acc={doc['metrics']['mean_class_acc']:.4f}"
    )


def test_resume_after_kill_is_bitwise_identical(trained, tmp_path, cli_inprocess):
    """A run killed (SIGKILL) after its first epoch and resumed (in-process) ends with the weights of the
    uninterrupted run (the `trained` fixture's, on the command line)."""
    tiny_recipe, straight, r = trained  # the uninterrupted run
    assert r.returncode == 0, r.stderr
    common = [str(tiny_recipe), *RESUMABLE]

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidlab", "train", *common, f"work_dir={killed}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while not (killed / "epoch_1.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "epoch_1.pth").exists()
    assert not (killed / "epoch_2.pth").exists(), "the run finished before it could be killed"
    r = cli_inprocess("train", *common, f"work_dir={killed}", "--resume")
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr + r.stdout
    a, b = _weights(straight / "epoch_2.pth"), _weights(killed / "epoch_2.pth")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _corrupt_copy(synth_tiny, tmp_path):
    """A copy of the tiny set's lists where three train videos are broken in three ways."""
    lines = (synth_tiny / "train.txt").read_text().splitlines()
    bad = {"zero.mp4": b"", "text.mp4": b"this is not a video\n"}
    good = (synth_tiny / lines[0].split()[0]).read_bytes()
    bad["truncated.mp4"] = good[: len(good) // 3]
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    root_lines = [f"{synth_tiny / line.split()[0]} {line.split()[1]}" for line in lines]
    root_lines[1:4] = [f"{tmp_path / name} 0" for name in bad]
    (tmp_path / "train.txt").write_text("\n".join(root_lines) + "\n")
    return tmp_path / "train.txt", sorted(str(tmp_path / n) for n in bad)


def test_corrupt_videos_skip_and_report(tiny_recipe, synth_tiny, tmp_path, cli_inprocess):
    """Training with data.on_error=skip (in-process; test_corrupt_video_raise_names_file runs the command line)."""
    train_list, bad = _corrupt_copy(synth_tiny, tmp_path)
    work = tmp_path / "run"
    r = cli_inprocess(
        "train",
        str(tiny_recipe),
        f"data.train_list={train_list}",
        "data.allow_outside_root=true",  # the list names its videos by absolute paths
        "data.on_error=skip",
        "train.epochs=1",
        "train.max_iters_per_epoch=null",
        f"work_dir={work}",
    )
    assert r.returncode == 0, r.stderr
    report = (work / "skipped_videos.txt").read_text()
    assert sorted({line.split()[-1] for line in report.splitlines()}) == bad
    assert "skipped 3 undecodable video(s)" in r.stderr


def test_corrupt_video_raise_names_file(tiny_recipe, synth_tiny, tmp_path):
    train_list, bad = _corrupt_copy(synth_tiny, tmp_path)
    r = run_cli(
        "train",
        str(tiny_recipe),
        f"data.train_list={train_list}",
        "data.allow_outside_root=true",
        "train.epochs=1",
        "train.max_iters_per_epoch=null",
        f"work_dir={tmp_path / 'run'}",
    )
    assert r.returncode != 0
    assert any(path in r.stderr for path in bad)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.epoch=3", "unknown config key 'train.epoch'; did you mean 'train.epochs'?"),
        ("model.name=tsm_r19", "tsm_r19"),
        ("model.kwargs={nonsense: 1}", "model.kwargs:"),
    ],
)
def test_cli_user_errors(tiny_recipe, tmp_path, cli_inprocess, override, message):
    r = cli_inprocess("train", str(tiny_recipe), override, f"work_dir={tmp_path}")
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_malformed_annotation_line(tiny_recipe, tmp_path):
    """A user error through the real command line (the other error tests call ``vidlab.cli.main`` in-process)."""
    bad = tmp_path / "bad.txt"
    bad.write_text("a.mp4 0\nb.mp4\n")
    r = run_cli("train", str(tiny_recipe), f"data.train_list={bad}", f"work_dir={tmp_path}")
    assert r.returncode == 2
    assert f"{bad}:2: expected 'path label'" in r.stderr and "Traceback" not in r.stderr


def test_fixed_length_family_follows_data_num_segments(tiny_recipe, tmp_path, cli_inprocess):
    """TRN fixes T at build time; the engine builds it for data.num_segments (4 here, the builder says 8): in
    `vidlab train` and `vidlab test` (in-process)."""
    work = tmp_path / "trn"
    r = cli_inprocess("train", str(tiny_recipe), "model.name=trn_r18", "train.epochs=1", f"work_dir={work}")
    assert r.returncode == 0, r.stderr
    r = cli_inprocess("test", str(tiny_recipe), "model.name=trn_r18", "--checkpoint", str(work / "best.pth"))
    assert r.returncode == 0, r.stderr
    assert "RESULT top1=" in r.stdout


def test_model_and_data_clip_lengths_must_agree(tiny_recipe, tmp_path, cli_inprocess):
    r = cli_inprocess(
        "train", str(tiny_recipe), "model.name=trn_r18", "model.kwargs={num_segments: 8}", f"work_dir={tmp_path}"
    )
    assert r.returncode == 2
    assert "model.kwargs.num_segments=8 but data.num_segments=4" in r.stderr and "Traceback" not in r.stderr


def test_pretrained_that_fits_nothing_is_an_error(tiny_recipe, tmp_path, cli_inprocess):
    bad = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, bad)
    r = cli_inprocess("train", str(tiny_recipe), f"model.pretrained={bad}", f"work_dir={tmp_path / 'w'}")
    assert r.returncode == 2
    assert "none of its 1 tensors fits tsn_r18" in r.stderr and "Traceback" not in r.stderr


def test_build_model_takes_builder_arguments_recorded_by_convert(tmp_path):
    """A converted PyTorchVideo/PySlowFast checkpoint records the arguments of its network (meta.kwargs)."""
    from vidlab.config import Config, ConfigError
    from vidlab.engine.builders import build_model

    path = tmp_path / "converted.pth"
    torch.save({"model": {}, "meta": {"kwargs": {"lateral_norm": True, "fusion_kernel": 7}}}, path)
    cfg = Config()
    cfg.model.name, cfg.model.num_classes = "slowfast_r50_8x8", 5
    model = build_model(cfg, path)
    assert model.backbone.lateral_norms is not None
    assert build_model(cfg).backbone.lateral_norms is None
    cfg.model.kwargs = {"lateral_norm": False}
    with pytest.raises(ConfigError, match="model.kwargs.lateral_norm=False but checkpoint .* lateral_norm=True"):
        build_model(cfg, path)


def test_regression_task_trains_tests_and_predicts(tiny_recipe, synth_tiny, tmp_path, cli_inprocess):
    """task=regression on SynthActions' speed lists: MSE/MAE/Pearson metrics, best.pth chosen by the lowest MSE,
    target mean/std kept in the checkpoint, predictions in the targets' units. In-process (`vidlab.cli.main`): the
    same commands run on the command line in test_train_test_predict_end_to_end."""
    work = tmp_path / "reg"
    common = ["task=regression", "model.num_classes=1", "data.label_map=null", "data.flip_label_map=null"]
    common += ["data.pairs=null", "data.train_list=train_speed.txt", "data.val_list=val_speed.txt"]
    common += ["data.test_list=test_speed.txt"]
    r = cli_inprocess("train", str(tiny_recipe), f"work_dir={work}", *common)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("RESULT mse=")
    history = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    state = torch.load(work / "best.pth", map_location="cpu", weights_only=True)
    best = min(history, key=lambda h: h["val_mse"])
    assert state["best"] == {"metric": "mse", "value": best["val_mse"], "epoch": best["epoch"]}
    speeds = [float(line.split()[1]) for line in (synth_tiny / "train_speed.txt").read_text().splitlines()]
    task = state["meta"]["task"]
    assert task["name"] == "regression" and task["target_mean"][0] == pytest.approx(sum(speeds) / len(speeds))

    r = cli_inprocess(
        "test", "--checkpoint", str(work / "best.pth"), "--list", "val_speed.txt", "--root", str(synth_tiny)
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].split(" minutes=")[0] == (
        f"RESULT mse={best['val_mse']:.4f} mae={best['val_mae']:.4f} pearson_r={best['val_pearson_r']:.4f}"
    )
    video = synth_tiny / (synth_tiny / "val_speed.txt").read_text().split()[0]
    r = cli_inprocess("predict", str(video), "--checkpoint", str(work / "best.pth"))
    assert r.returncode == 0, r.stderr
    rank, name, value = r.stdout.split()
    assert (rank, name) == ("1", "target_0") and abs(float(value)) < 100
