"""Write tests/assets/temporal_shift.json: MMAction2's temporal shift applied to small integer-valued tensors.

Run in an environment with MMAction2 1.2.0 installed (not a vidlab dependency)::

    python tests/assets/make_shift_fixture.py

The input of each case is ``arange(1, N + 1)`` reshaped to ``shape`` (exact in float32), so the stored
output can be compared exactly.
"""

import json
from pathlib import Path

import mmaction
import torch
from mmaction.models.backbones.resnet_tsm import TemporalShift

CASES = [
    # (num_segments, shift_div, (B * num_segments, C, H, W)); C not a multiple of shift_div in the first
    (4, 4, (8, 10, 2, 3)),
    (3, 8, (3, 16, 1, 2)),
    (1, 8, (2, 8, 1, 1)),
]


def main() -> None:
    cases = []
    for num_segments, shift_div, shape in CASES:
        x = torch.arange(1, torch.Size(shape).numel() + 1, dtype=torch.float32).reshape(shape)
        y = TemporalShift.shift(x, num_segments, shift_div=shift_div)
        cases.append(
            {
                "num_segments": num_segments,
                "shift_div": shift_div,
                "shape": list(shape),
                "output": [int(v) for v in y.flatten().tolist()],
            }
        )
    out = {"source": f"mmaction2 {mmaction.__version__}, TemporalShift.shift", "cases": cases}
    path = Path(__file__).with_name("temporal_shift.json")
    path.write_text(json.dumps(out) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
