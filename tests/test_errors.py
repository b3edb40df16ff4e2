"""One error family: every error a user can cause is a VidlabError, and every command prints it as one line, exit 2."""

import importlib
import inspect
import pkgutil

import pytest
import torch

import vidlab
from vidlab.errors import InputError, VidlabError, one_line

# Exceptions vidlab defines that are not errors of the user: internal signals, caught where they are raised.
INTERNAL = {"vidlab.data.decode._UntrustedTimestamps"}


def _vidlab_exception_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(vidlab.__path__, "vidlab."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_exception_vidlab_defines_is_a_vidlab_error():
    classes = _vidlab_exception_classes()
    assert len(classes) >= 15  # AnnotationError, VideoDecodeError, CheckpointError, ConfigError, ...
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, VidlabError))
    assert outside == sorted(INTERNAL)
    # the built-in base each replaces stays, so `except ValueError` / `except RuntimeError` keep working
    from vidlab.config import ConfigError
    from vidlab.data.decode import VideoDecodeError
    from vidlab.engine.checkpoint import CheckpointError

    assert issubclass(ConfigError, ValueError) and issubclass(VideoDecodeError, RuntimeError)
    assert issubclass(CheckpointError, RuntimeError) and vidlab.VidlabError is VidlabError


def test_model_arguments_rejected_by_a_builder_name_the_model():
    from vidlab.models import ModelArgumentError

    with pytest.raises(ModelArgumentError, match=r"tsm_r18: .*no_such_option.*arguments: .*no_such_option=1"):
        vidlab.create_model("tsm_r18", no_such_option=1)
    with pytest.raises(ModelArgumentError, match=r"tsm_r18: ResNet depth must be one of .*got 19") as e:
        vidlab.create_model("tsm_r18", depth=19)
    assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)  # both old behaviours kept


def test_the_error_module_imports_nothing():
    """Every module may import vidlab.errors (the metrics' pure modules included): it must stay dependency-free."""
    import ast

    from vidlab import errors

    tree = ast.parse(open(errors.__file__).read())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [getattr(n, "module", None) for n in imports] == ["__future__"]


def test_one_line():
    assert one_line(InputError("a\n  b\n\nc")) == "a; b; c"
    assert "/x/y.pth" in one_line(FileNotFoundError(2, "No such file or directory", "/x/y.pth"))
    assert one_line(OSError(28, "No space left on device")) == "[Errno 28] No space left on device"
    assert one_line(InputError()) == "InputError"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A corrupt MP4, a checkpoint made by `vidlab convert`, a malformed list and a malformed YAML file."""
    from tests.models.test_convert import load_fixture
    from vidlab.cli import main

    tmp = tmp_path_factory.mktemp("errors")
    corrupt = tmp / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    _, sd = load_fixture("tsm_r18")
    torch.save({"state_dict": sd}, tmp / "mm.pth")
    main(["convert", str(tmp / "mm.pth"), str(tmp / "tsm.pth"), "--model", "tsm_r18"])
    (tmp / "bad_list.txt").write_text("a.mp4 0\nb.mp4 not_a_label\n")
    (tmp / "bad.yaml").write_text("model: {name: tsm_r18\n")
    (tmp / "recipe.yaml").write_text(f"data: {{root: {tmp}, train_list: bad_list.txt}}\nmodel: {{name: tsm_r18}}\n")
    return tmp


# (arguments, what the one line must say); {t} is the fixture's folder
CASES = [
    (["predict", "{t}/corrupt.mp4", "--checkpoint", "{t}/tsm.pth"], "corrupt.mp4: cannot open as a video"),
    (["predict", "{t}/none.mp4", "--checkpoint", "{t}/tsm.pth"], "none.mp4: no such file"),
    (["predict", "{t}/corrupt.mp4", "--checkpoint", "{t}/none.pth"], "checkpoint not found"),
    (["test", "--checkpoint", "{t}/corrupt.mp4"], "corrupt.mp4"),
    (["train", "{t}/none.yaml"], "config file not found"),
    (["train", "{t}/bad.yaml"], "bad.yaml"),
    (["train", "{t}/recipe.yaml", "model.no_such_key=1"], "no_such_key"),
    (["train", "{t}/recipe.yaml"], "bad_list.txt:2: labels must be integers"),
    (
        ["convert", "{t}/mm.pth", "{t}/x.pth", "--model", "tsm_r18", "--kwargs", "{{no_such_option: 1}}"],
        "no_such_option",
    ),
    (["test", "--checkpoint", "{t}/tsm.pth", "--list", "{t}/none.txt", "--root", "{t}"], "none.txt"),
    (
        ["extract", "--checkpoint", "{t}/tsm.pth", "--list", "{t}/bad_list.txt", "--root", "{t}", "--out", "{t}/f"],
        "bad_list.txt:2",
    ),
    (["data", "synth", "--out", "{t}/s", "--sizes", "64by48"], "--sizes takes WIDTHxHEIGHT"),
    (["data", "flow", "{t}/none.txt", "{t}", "{t}/flow"], "none.txt"),
    (["data", "longterm-list", "coin", "{t}/none.json", "{t}/out.csv"], "none.json"),
    (["convert", "{t}/none.pth", "{t}/x.pth", "--model", "tsm_r18"], "none.pth"),
    (["convert", "{t}/mm.pth", "{t}/x.pth"], "--model is required"),
    (["fuse", "--scores", "{t}/none.json", "{t}/none2.json"], "none.json"),
    (["eval-ava", "--gt", "{t}/none.csv", "--pred", "{t}/none.csv", "--labelmap", "{t}/none.pbtxt"], "none"),
    (["caption-eval", "--gt", "{t}/none.json", "--pred", "{t}/none.json", "--metrics", "bleu"], "none.json"),
    (["suite", "run", "{t}/none.yaml"], "none.yaml"),
    (["viz-mae", "{t}/corrupt.mp4", "--checkpoint", "{t}/tsm.pth", "--out", "{t}/v.png"], "videomae_pretrain"),
]


@pytest.mark.parametrize("argv,expected", CASES, ids=[" ".join(c[0][:2]) for c in CASES])
def test_every_command_prints_a_user_error_as_one_line_with_exit_2(files, cli_inprocess, argv, expected):
    res = cli_inprocess(*[a.format(t=files) for a in argv])
    command = " ".join(a for a in argv[:2] if not a.startswith(("-", "{")) and "=" not in a)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr
    assert len(lines) == 1 and lines[0].startswith(f"vidlab {command}: error: "), res.stderr
    assert expected in lines[0]


def test_predict_on_a_corrupt_file_from_the_command_line(files):
    """The command line itself (a fresh process): one line, exit 2, no traceback; VIDLAB_DEBUG=1 shows it."""
    from tests.conftest import run_cli

    res = run_cli("predict", str(files / "corrupt.mp4"), "--checkpoint", str(files / "tsm.pth"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert (
        res.stderr.strip()
        == f"vidlab predict: error: {files / 'corrupt.mp4'}: cannot open as a video "
        + (res.stderr.strip().split("cannot open as a video ", 1)[1])
    )
    res = run_cli("predict", str(files / "corrupt.mp4"), "--checkpoint", str(files / "tsm.pth"),
                  env={"VIDLAB_DEBUG": "1"})  # fmt: skip
    assert res.returncode == 1 and "Traceback" in res.stderr and "VideoDecodeError" in res.stderr
