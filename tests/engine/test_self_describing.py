"""Checkpoints written by `vidlab convert` describe themselves: `vidlab.load_model` needs nothing else."""

import torch

import vidlab
from tests.models.test_convert import build_for, fixture_input, load_fixture


def test_converted_checkpoint_describes_model_classes_and_test_clips(tmp_path):
    from tests.conftest import run_cli

    fx, sd = load_fixture("tsm_r18")
    src, dst, names = tmp_path / "mm_tsm.pth", tmp_path / "tsm.pth", tmp_path / "classes.txt"
    torch.save({"state_dict": sd}, src)
    names.write_text("\n".join(f"class {i}" for i in range(5)) + "\n")
    res = run_cli("convert", str(src), str(dst), "--model", "tsm_r18", "--label-map", str(names))
    assert res.returncode == 0, res.stderr
    meta = torch.load(dst, weights_only=True)["meta"]
    assert meta["model"] == "tsm_r18" and meta["num_classes"] == 5 and meta["classes"][4] == "class 4"
    assert meta["task"]["name"] == "recognition"
    spec = meta["data"]  # the default spec: 8 segments of one frame, 224 centre crop, MMAction2's mean/std
    assert spec["input_format"] == "NCHW" and spec["num_segments"] == 8 and spec["sampler"]["num_clips"] == 8
    assert spec["pipeline"] == [{"type": "CenterCrop", "crop_size": 224}] and spec["mean"][0] == 123.675

    model = vidlab.load_model(dst)
    reference = build_for(fx)
    reference.load_state_dict(torch.load(dst, weights_only=True)["model"])
    x = fixture_input(fx)
    with torch.no_grad():
        assert torch.equal(model(x), reference.eval()(x))
    assert model.meta["classes"] == meta["classes"] and not model.training

    res = run_cli("convert", str(src), str(dst), "--model", "tsm_r18", "--label-map", str(tmp_path / "none.txt"))
    assert res.returncode == 2 and "none.txt" in res.stderr
