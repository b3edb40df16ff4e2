"""Frame samplers against MMAction2 1.2.0 (fixture from tests/assets/make_sampler_fixtures.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from vidlab.data.sampling import DenseSampleFrames, SampleFrames, UniformSample

FIXTURES = json.loads((Path(__file__).parents[1] / "assets" / "sampler_fixtures.json").read_text())
SAMPLERS = {"SampleFrames": SampleFrames, "UniformSample": UniformSample, "DenseSampleFrames": DenseSampleFrames}


def _case_id(case: dict) -> str:
    kwargs = ",".join(f"{k}={v}" for k, v in case["kwargs"].items() if k != "test_mode")
    return f"{case['sampler']}({kwargs})@{case['total_frames']}+{case['start_index']}"


def _build(case: dict):
    return SAMPLERS[case["sampler"]](**case["kwargs"], start_index=case["start_index"])


@pytest.mark.parametrize("case", FIXTURES["test"], ids=_case_id)
def test_test_mode_matches_mmaction2(case):
    if "error" in case:
        with pytest.raises(ValueError):
            _build(case)(case["total_frames"], fps=case["fps"])
        return
    sampler = _build(case)
    kwargs = {"fps": case["fps"]} if case["sampler"] == "SampleFrames" else {}
    inds = sampler(case["total_frames"], **kwargs)
    assert inds.dtype == np.int64
    np.testing.assert_array_equal(inds, case["expected"])
    assert inds.shape == (sampler.num_clips * sampler.clip_len,)


@pytest.mark.parametrize("case", FIXTURES["train"], ids=_case_id)
def test_train_mode_distribution_matches_mmaction2(case):
    sampler = _build(case)
    rng = np.random.default_rng(0)
    draws = np.stack([sampler(case["total_frames"], rng) for _ in range(400)])
    assert draws.shape[1] == sampler.num_clips * sampler.clip_len == len(case["min"])
    ref_min, ref_max, ref_mean = (np.array(case[k]) for k in ("min", "max", "mean"))
    assert (draws.min(0) >= ref_min).all() and (draws.max(0) <= ref_max).all()
    # Per position, the support is a handful of values: the mean of 400 draws is well within 10%.
    np.testing.assert_allclose(draws.mean(0), ref_mean, atol=0.5 + 0.1 * (ref_max - ref_min).max())
    # Wide supports must actually be explored, not collapsed to a constant.
    assert ((draws.max(0) - draws.min(0)) >= 0.5 * (ref_max - ref_min)).all()


@pytest.mark.parametrize(
    "sampler",
    [
        SampleFrames(8, 2, 3, temporal_jitter=True),
        SampleFrames(1, 1, 8, keep_tail_frames=True),
        UniformSample(16, 2),
        DenseSampleFrames(8, 2, 2, sample_range=32),
    ],
    ids=repr,
)
@pytest.mark.parametrize("total_frames", [1, 7, 50, 301])
def test_train_mode_shape_range_and_seeding(sampler, total_frames):
    inds = sampler(total_frames, np.random.default_rng(123))
    assert inds.dtype == np.int64
    assert inds.shape == (sampler.num_clips * sampler.clip_len,)
    assert inds.min() >= 0 and inds.max() < total_frames
    np.testing.assert_array_equal(inds, sampler(total_frames, np.random.default_rng(123)))
    if total_frames > 50:
        draws = {tuple(sampler(total_frames, np.random.default_rng(seed))) for seed in range(5)}
        assert len(draws) > 1, "train mode must be random"
    assert sampler(total_frames).shape == inds.shape  # default generator


def test_effective_num_clips():
    assert SampleFrames(1, 1, 8, twice_sample=True, test_mode=True).num_clips == 16
    assert SampleFrames(1, 1, 8, twice_sample=True).num_clips == 8  # twice_sample is test-only
    assert DenseSampleFrames(8, 1, 2, num_sample_positions=10, test_mode=True).num_clips == 20
    assert DenseSampleFrames(8, 1, 2, num_sample_positions=10).num_clips == 2


def test_start_index_and_repeat_last():
    sampler = SampleFrames(4, 3, 1, test_mode=True, out_of_bound_opt="repeat_last", start_index=1)
    # 5 frames cannot hold a 10-frame span: frames 0 and 3 exist, 6 and 9 repeat frame 3.
    np.testing.assert_array_equal(sampler(5), [1, 4, 4, 4])
    sampler = SampleFrames(4, 3, 1, test_mode=True, out_of_bound_opt="loop")
    np.testing.assert_array_equal(sampler(5), [0, 3, 1, 4])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SampleFrames(0), "clip_len"),
        (lambda: SampleFrames(8, out_of_bound_opt="wrap"), "out_of_bound_opt"),
        (lambda: DenseSampleFrames(8, num_clips=0), "num_clips"),
        (lambda: UniformSample(8)(0), "total_frames"),
        (lambda: SampleFrames(4, 1, 1, twice_sample=True, test_mode=True), "twice_sample"),
    ],
)
def test_bad_arguments_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()
