"""Hostile files run nothing: pickles in checkpoints, YAML tags, annotation paths out of the data root, network."""

import os
import textwrap

import pytest
import torch

from tests.conftest import run_cli, write_tiny_recipe
from vidlab.config import ConfigError, load_config
from vidlab.data.datasets import AnnotationError, inside_root


class _Payload:
    """Unpickling this would create ``self.marker`` (what a real exploit would do with a shell command)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


@pytest.fixture()
def evil_checkpoint(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "meta": {"model": "tsn_r18"}, "hook": _Payload(marker)}, path)
    assert not marker.exists()
    return path, marker


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(evil_checkpoint, tmp_path, cli_inprocess):
    import vidlab
    from vidlab.engine.checkpoint import CheckpointError
    from vidlab.models.convert import read_state_dict

    path, marker = evil_checkpoint
    with pytest.raises(CheckpointError, match="evil.pth"):
        vidlab.load_model(path)
    with pytest.raises(ValueError, match="weights_only=True"):
        read_state_dict(path)
    for argv in (
        ["test", "--checkpoint", str(path)],
        ["predict", str(tmp_path / "v.mp4"), "--checkpoint", str(path)],
        ["convert", str(path), str(tmp_path / "out.pth"), "--model", "tsn_r18"],
        ["extract", "--checkpoint", str(path), "--list", "l.txt", "--root", str(tmp_path), "--out", str(tmp_path)],
    ):
        res = cli_inprocess(*argv)
        assert res.returncode == 2 and "evil.pth" in res.stderr, (argv, res.stderr)
    assert not marker.exists()  # torch.save's pickle was never executed
    torch.load(path, weights_only=False)  # the check above can fail: the unrestricted loader runs the payload
    assert marker.exists()


def test_yaml_tags_that_would_run_code_are_a_config_error(tmp_path):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"model: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="evil.yaml"):
        load_config(recipe)
    with pytest.raises(ConfigError):
        load_config(None, [f"model.name=!!python/object/apply:os.system ['touch {marker}']"])
    from vidlab.suites import load_suite

    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(Exception) as e:
        load_suite(suite)
    assert "suite.yaml" in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "rel,inside",
    [("a.mp4", True), ("x/../a.mp4", True), ("./a/b.mp4", True), ("../a.mp4", False), ("a/../../b.mp4", False),
     ("/etc/passwd", False), ("..", False), ("..foo/a.mp4", True)],
)  # fmt: skip
def test_inside_root(rel, inside):
    assert inside_root(rel) is inside


def test_annotation_paths_cannot_leave_the_data_root(synth_tiny, tmp_path):
    from vidlab.engine.builders import build_dataset

    root = tmp_path / "root"
    root.mkdir()
    for name in ("label_map.txt", "flip_label_map.json", "pairs.json"):
        (root / name).write_text((synth_tiny / name).read_text())
    video = next(line.split()[0] for line in (synth_tiny / "train.txt").read_text().splitlines())
    outside = os.path.relpath(synth_tiny / video, root)  # ../../synth_tiny0/videos/...
    (root / "train.txt").write_text(f"{outside} 0\n{synth_tiny / video} 1\n")
    cfg = load_config(write_tiny_recipe(root, tmp_path / "r.yaml"))
    with pytest.raises(AnnotationError, match=r"train.txt: entry 1: path '\.\./.*' leaves the data root .*1 more"):
        build_dataset(cfg, "train")
    cfg = load_config(write_tiny_recipe(root, tmp_path / "r.yaml"), ["data.allow_outside_root=true"])
    dataset = build_dataset(cfg, "train")
    assert len(dataset) == 2 and dataset[1]["imgs"].shape[1] == 4  # both read, from outside the root
    from vidlab.data.datasets import feature_path

    with pytest.raises(ValueError, match="inside the data root"):
        feature_path(tmp_path / "features", "../../escape.mp4")  # `vidlab extract` never writes outside --out


SITECUSTOMIZE = """
import socket, os

_LOG = os.environ["VIDLAB_NET_LOG"]
_NET = (socket.AF_INET, socket.AF_INET6)


def _refuse(what):
    with open(_LOG, "a") as f:
        f.write(what + "\\n")
    raise OSError("network disabled in this test: " + what)


def _guard(name):
    real = getattr(socket.socket, name)

    def guarded(self, *args, **kwargs):
        if self.family in _NET:
            _refuse(name + " " + repr(args[:1]))
        return real(self, *args, **kwargs)

    setattr(socket.socket, name, guarded)


for _name in ("connect", "connect_ex", "bind", "sendto"):
    _guard(_name)
socket.getaddrinfo = lambda *a, **k: _refuse("getaddrinfo " + repr(a[:2]))
socket.create_connection = lambda *a, **k: _refuse("create_connection " + repr(a[:1]))
"""


def test_train_test_predict_and_extract_open_no_network_connection(synth_tiny, tmp_path):
    """Each command runs for real (a fresh interpreter, data-loader workers included) with IPv4/IPv6 sockets,
    name lookups and connections refused and logged; the log must stay empty."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(textwrap.dedent(SITECUSTOMIZE))
    log = tmp_path / "net.log"
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "site"), os.environ.get("PYTHONPATH")])),
           "VIDLAB_NET_LOG": str(log)}  # fmt: skip
    probe = run_cli("models", "tsn_r18", env=env)  # the guarded interpreter starts (the guard is checked last)
    assert probe.returncode == 0, probe.stderr
    recipe = write_tiny_recipe(synth_tiny, tmp_path / "tiny.yaml")
    work = tmp_path / "work"
    ckpt = str(work / "best.pth")
    video = str(synth_tiny / (synth_tiny / "test.txt").read_text().split()[0])
    for argv in (
        ["train", str(recipe), f"work_dir={work}", "data.num_workers=1", "train.epochs=1"],
        ["test", "--checkpoint", ckpt, "--root", str(synth_tiny), "--list", "test.txt", "data.num_workers=1"],
        ["predict", video, "--checkpoint", ckpt],
        ["extract", "--checkpoint", ckpt, "--list", str(synth_tiny / "val.txt"), "--root", str(synth_tiny),
         "--out", str(tmp_path / "features")],
    ):  # fmt: skip
        res = run_cli(*argv, env=env)
        assert res.returncode == 0, (argv, res.stderr[-2000:])
    assert not log.exists() or log.read_text() == ""
    import subprocess
    import sys

    check = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.org', 80)"],
                           env={**os.environ, **env}, capture_output=True, text=True)  # fmt: skip
    assert check.returncode != 0 and "network disabled" in check.stderr and "example.org" in log.read_text()
