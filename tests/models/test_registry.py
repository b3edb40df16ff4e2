import ast
from pathlib import Path

import pytest
import torch

import vidlab
from vidlab.models import (
    UnknownModelError,
    _registry,
    count_params,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

EXPECTED = ["tsm_r18", "tsm_r50", "tsn_r18", "tsn_r50", "x3d_s"]


@pytest.fixture()
def scratch_registry(monkeypatch):
    """Registrations made in a test go to a copy of the registry, dropped afterwards."""
    monkeypatch.setattr(_registry, "_MODELS", dict(_registry._MODELS))


def test_list_models_sorted_and_filtered():
    names = list_models()
    assert names == sorted(names)
    assert set(EXPECTED) <= set(names)
    assert list_models("tsn_r1*") == ["tsn_r101", "tsn_r152", "tsn_r18"]
    assert list_models("ts*_r50") == ["tsm_r50", "tsn_r50"]
    assert list_models("nothing*") == []
    assert vidlab.list_models is list_models and vidlab.create_model is create_model


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownModelError, match=r"unknown model 'tsm_r05'.*did you mean 'tsm_r50'"):
        create_model("tsm_r05")
    with pytest.raises(ValueError, match="'x3d_s'"):  # UnknownModelError is a ValueError
        create_model("x3d-s")
    with pytest.raises(UnknownModelError) as info:
        get_model_info("zzzz_qqq")
    assert "did you mean" not in str(info.value)


def test_duplicate_registration_raises(scratch_registry):
    @register_model
    def dummy_net(*, num_classes: int = 3):
        return torch.nn.Linear(2, num_classes)

    assert "dummy_net" in list_models()
    with pytest.raises(ValueError, match="'dummy_net' is already registered"):

        @register_model(input_shape=(3, 4, 8, 8))
        def dummy_net(*, num_classes: int = 3):  # noqa: F811
            return torch.nn.Linear(2, num_classes)

    with pytest.raises(ValueError, match="already registered"):
        register_model(_registry._MODELS["tsn_r18"].builder)


def test_register_metadata(scratch_registry):
    @register_model(input_shape=(3, 4, 8, 8))
    def dummy_clip_net(*, num_classes: int = 3):
        return torch.nn.Linear(2, num_classes)

    info = get_model_info("dummy_clip_net")
    assert info.input_shape == (3, 4, 8, 8)
    assert info.module == __name__
    assert info.num_params() == 2 * 3 + 3
    with pytest.raises(ValueError, match=r"\(C, T, H, W\)"):
        register_model(input_shape=(3, 8, 8))


def test_model_info_of_registered_models():
    assert get_model_info("tsn_r50").input_shape == (3, 8, 224, 224)
    assert get_model_info("tsm_r50").input_shape == (3, 8, 224, 224)
    assert get_model_info("x3d_s").input_shape == (3, 13, 160, 160)
    assert get_model_info("x3d_s").module == "vidlab.models.x3d"
    # counted on the meta device: same number as a real build
    assert get_model_info("tsn_r18").num_params(num_classes=7) == count_params(create_model("tsn_r18", num_classes=7))


def test_create_model_drops_none_kwargs():
    model = create_model("tsn_r18", num_classes=None, dropout=None, zero_init_residual=None)
    assert model.num_classes == 400
    assert isinstance(model.head.dropout, torch.nn.Dropout) and model.head.dropout.p == 0.4
    model = create_model("tsn_r18", num_classes=7, dropout=0.0)
    assert model.num_classes == 7 and model.head.fc.out_features == 7
    assert isinstance(model.head.dropout, torch.nn.Identity)


def test_builders_are_keyword_only_and_reject_unknown_args():
    builder = get_model_info("tsm_r18").builder
    with pytest.raises(TypeError):
        builder(10)
    with pytest.raises(TypeError, match="no_such_option"):
        create_model("tsm_r18", no_such_option=1)


def test_count_params_trainable_only():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    assert count_params(model) == 16 + 10
    assert count_params(model, trainable_only=True) == 10


def test_models_package_imports_no_data_engine_cli_config():
    root = Path(vidlab.__file__).parent
    forbidden = ("vidlab.data", "vidlab.engine", "vidlab.cli", "vidlab.config")
    for path in sorted((root / "models").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            bad = [n for n in names if n.startswith(forbidden)]
            assert not bad, f"{path.relative_to(root)} imports {bad}"
