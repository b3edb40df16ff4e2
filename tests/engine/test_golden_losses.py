"""Golden losses: 30 steps of a fixed recipe reproduce, bit for bit, the losses recorded before the engine was
split into task objects (tests/assets/make_golden_losses.py wrote them, one list per CPU capability)."""

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO

ASSETS = REPO / "tests" / "assets"

RUN = """
import json, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from tests.assets.make_golden_losses import record_losses, write_recipe
recipe = write_recipe(Path({tmp!r}) / "golden.yaml", Path({root!r}), Path({tmp!r}) / "run")
print("LOSSES", json.dumps(record_losses(recipe, ["optim.decay_norm_bias=true"])))
"""


def test_training_reproduces_the_golden_losses(synth_tiny, tmp_path):
    doc = json.loads((ASSETS / "golden_losses.json").read_text())
    from tests.assets.make_golden_losses import golden_key

    capability = golden_key()
    if capability not in doc["losses"]:
        pytest.skip(f"no golden losses recorded for CPU capability {capability} (recorded: {sorted(doc['losses'])})")
    code = RUN.format(repo=str(REPO), tmp=str(tmp_path), root=str(synth_tiny))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    line = next(x for x in r.stdout.splitlines() if x.startswith("LOSSES "))
    losses = json.loads(line[len("LOSSES ") :])
    expected = doc["losses"][capability]
    assert len(losses) == len(expected) == 30
    assert losses == expected, max(abs(a - b) for a, b in zip(losses, expected))
