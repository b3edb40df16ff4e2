import pytest

from vidlab.config import ConfigError, load_config, save_config


def test_defaults_yaml_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  name: tsn_r18\n  num_classes: 7\noptim:\n  lr: 0.1\n")
    cfg = load_config(recipe, ["optim.lr=0.02", "data.train_sampler.num_clips=16", "train.epochs=3"])
    assert cfg.model.name == "tsn_r18" and cfg.model.num_classes == 7
    assert cfg.optim.lr == 0.02 and cfg.train.epochs == 3
    assert cfg.data.train_sampler["num_clips"] == 16
    out = tmp_path / "resolved.yaml"
    save_config(cfg, out)
    again = load_config(out)
    assert again == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=0.1", "unknown config key 'optim.lrr'; did you mean 'optim.lr'?"),
        ("optm.lr=0.1", "did you mean 'optim.lr'?"),
        ("lr=0.1", "did you mean 'optim.lr'?"),
        ("train.epochs=abc", "'train.epochs' expects int"),
        ("data.on_error=ignore", "'data.on_error' must be one of"),
        ("epochs", "not of the form key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        load_config(None, [override])


def test_unknown_key_in_yaml_names_file_and_key(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'train.epoch'; did you mean 'train.epochs'\?"):
        load_config(recipe)


def test_shipped_recipes_load():
    from pathlib import Path

    recipes = sorted(Path(__file__).resolve().parents[1].glob("configs/**/*.yaml"))
    assert recipes
    for r in recipes:
        load_config(r)
