"""``vidlab flops``: multiply-adds through torch.utils.flop_counter equal mmengine's count of the same convolutions
and linear layers in MMAction2's builds (``tests/assets/flops_mmaction2.json``, docs/MODEL_ZOO.md)."""

import json
from pathlib import Path

import pytest

from vidlab.errors import InputError
from vidlab.models.flops import count_macs

MMENGINE = json.loads((Path(__file__).resolve().parents[1] / "assets" / "flops_mmaction2.json").read_text())["models"]


@pytest.mark.parametrize("name", ["tsn_r50", "c2d_r50", "slowonly_r50_4x16"])
def test_matrix_products_equal_mmengines_count(name):
    ref = MMENGINE[name]
    by_op = ref["whole"]["by_operator"]
    macs, fallback = count_macs(name, tuple(ref["input"]))
    assert not fallback and macs == by_op["conv"] + by_op.get("linear", 0) + by_op.get("matmul", 0)


def test_models_that_need_more_than_a_clip_are_refused():
    with pytest.raises(InputError, match="slowonly_r50_4x16_ava is a detection model"):
        count_macs("slowonly_r50_4x16_ava")


def test_the_command_prints_gmacs_gflops_and_parameters(cli_inprocess):
    r = cli_inprocess("flops", "tsn_r50")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "RESULT gmacs=32.6979 gflops=65.3958 params=24327632"
    r = cli_inprocess("flops", "tsn_r50", "--input", "3", "8", "112", "112", "--num-classes", "10")
    assert "input (1, 3, 8, 112, 112), 23,528,522 parameters" in r.stdout
    r = cli_inprocess("flops", "slowonly_r50_4x16_ava")
    assert r.returncode == 2 and "is a detection model" in r.stderr
