"""Generated documentation stays true to the code."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_model_zoo_doc_is_up_to_date():
    res = subprocess.run(
        [sys.executable, "benchmarks/model_zoo.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, (
        f"docs/MODEL_ZOO.md is stale; run `python benchmarks/model_zoo.py`\n{res.stdout}{res.stderr}"
    )
