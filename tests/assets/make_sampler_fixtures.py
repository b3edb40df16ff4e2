"""Writes sampler_fixtures.json: MMAction2 1.2.0's frame indices for a grid of sampler settings.

Run with a Python environment that has ``mmaction2==1.2.0`` installed (vidlab is not needed):

    python tests/assets/make_sampler_fixtures.py

Test-mode cases record the exact indices (or the exception MMAction2 raises). Train-mode cases
record, for every output position, the min / max / mean index over many seeded draws, because
MMAction2 draws from the global ``np.random`` state and its stream cannot be reproduced.
"""

import itertools
import json
from pathlib import Path

import numpy as np
from mmaction.datasets.transforms import DenseSampleFrames, SampleFrames, UniformSample

OUT = Path(__file__).with_name("sampler_fixtures.json")
TRAIN_DRAWS = 4000

SAMPLERS = {"SampleFrames": SampleFrames, "UniformSample": UniformSample, "DenseSampleFrames": DenseSampleFrames}


def run(name, kwargs, total_frames, start_index=0, fps=None):
    results = {"total_frames": total_frames, "start_index": start_index}
    if fps is not None:
        results["avg_fps"] = fps
    return SAMPLERS[name](**kwargs).transform(results)["frame_inds"]


def test_case(name, kwargs, total_frames, start_index=0, fps=None):
    case = {"sampler": name, "kwargs": kwargs, "total_frames": total_frames, "start_index": start_index, "fps": fps}
    try:
        case["expected"] = run(name, kwargs, total_frames, start_index, fps).tolist()
    except Exception as exc:  # recorded so the test can check that vidlab rejects it too
        case["error"] = type(exc).__name__
    return case


def train_case(name, kwargs, total_frames, start_index=0):
    np.random.seed(0)
    draws = np.stack([run(name, kwargs, total_frames, start_index) for _ in range(TRAIN_DRAWS)])
    return {
        "sampler": name,
        "kwargs": kwargs,
        "total_frames": total_frames,
        "start_index": start_index,
        "min": draws.min(0).tolist(),
        "max": draws.max(0).tolist(),
        "mean": np.round(draws.mean(0), 3).tolist(),
    }


def sample_frames_test_cases():
    cases = []
    grid = itertools.product([1, 4, 8], [1, 3], [1, 2, 5], [False, True], ["loop", "repeat_last"], [1, 5, 13, 40, 250])
    for clip_len, interval, num_clips, twice, oob, total in grid:
        kwargs = dict(
            clip_len=clip_len,
            frame_interval=interval,
            num_clips=num_clips,
            twice_sample=twice,
            out_of_bound_opt=oob,
            test_mode=True,
        )
        cases.append(test_case("SampleFrames", kwargs, total, start_index=int(total % 2 == 0)))
    common = dict(test_mode=True)
    cases += [
        test_case("SampleFrames", dict(clip_len=32, frame_interval=2, num_clips=10, **common), 300, 1),
        test_case("SampleFrames", dict(clip_len=1, num_clips=8, twice_sample=True, **common), 7),
        test_case("SampleFrames", dict(clip_len=1, num_clips=16, **common), 10),
        test_case(
            "SampleFrames", dict(clip_len=16, frame_interval=4, num_clips=1, keep_tail_frames=True, **common), 30
        ),
        test_case("SampleFrames", dict(clip_len=8, frame_interval=8, num_clips=3, keep_tail_frames=True, **common), 90),
    ]
    for fps, total, num_clips, clip_len in [(30, 300, 1, 8), (30, 300, 3, 8), (60, 100, 4, 16), (24, 50, 2, 4)]:
        kwargs = dict(clip_len=clip_len, frame_interval=4, num_clips=num_clips, target_fps=15, **common)
        cases.append(test_case("SampleFrames", kwargs, total, fps=fps))
    return cases


def other_test_cases():
    cases = []
    for clip_len, num_clips, total in itertools.product([1, 8, 16], [1, 2, 3], [1, 5, 16, 17, 100]):
        kwargs = dict(clip_len=clip_len, num_clips=num_clips, test_mode=True)
        cases.append(test_case("UniformSample", kwargs, total, start_index=total % 2))
    grid = itertools.product([8, 32], [1, 2], [1, 3], [32, 64], [3, 10], [10, 64, 100, 300], ["loop", "repeat_last"])
    for clip_len, interval, num_clips, sample_range, positions, total, oob in grid:
        if (clip_len + interval + num_clips + sample_range + positions + total) % 3:
            continue  # a third of the grid keeps the file small while covering every value
        kwargs = dict(
            clip_len=clip_len,
            frame_interval=interval,
            num_clips=num_clips,
            sample_range=sample_range,
            num_sample_positions=positions,
            out_of_bound_opt=oob,
            test_mode=True,
        )
        cases.append(test_case("DenseSampleFrames", kwargs, total, start_index=total % 2))
    return cases


def train_cases():
    cases = []
    for total in [3, 10, 20, 33, 64, 200]:
        for clip_len, interval, num_clips in [(1, 1, 8), (8, 2, 1), (4, 4, 3), (16, 1, 1), (2, 1, 8)]:
            for keep_tail in [False, True]:
                kwargs = dict(
                    clip_len=clip_len, frame_interval=interval, num_clips=num_clips, keep_tail_frames=keep_tail
                )
                cases.append(train_case("SampleFrames", kwargs, total))
    cases.append(train_case("SampleFrames", dict(clip_len=8, frame_interval=4, temporal_jitter=True), 100))
    cases.append(train_case("SampleFrames", dict(clip_len=8, frame_interval=8, out_of_bound_opt="repeat_last"), 40, 1))
    for total in [5, 16, 17, 100]:
        cases.append(train_case("UniformSample", dict(clip_len=8), total))
    for total in [10, 64, 65, 66, 300]:
        cases.append(train_case("DenseSampleFrames", dict(clip_len=8, frame_interval=2, num_clips=2), total))
    return cases


def main():
    fixtures = {
        "source": "mmaction2 1.2.0 (mmaction.datasets.transforms.loading)",
        "test": sample_frames_test_cases() + other_test_cases(),
        "train": train_cases(),
        "train_draws": TRAIN_DRAWS,
    }
    OUT.write_text(json.dumps(fixtures, separators=(",", ":")) + "\n")
    print(f"wrote {len(fixtures['test'])} test and {len(fixtures['train'])} train cases to {OUT}")


if __name__ == "__main__":
    main()
