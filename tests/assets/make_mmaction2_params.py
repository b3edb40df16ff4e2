"""Write tests/assets/params_mmaction2.json: parameter counts of MMAction2's full-size builds of the zoo models.

Run in the reference environment (MMAction2 1.2.0)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_mmaction2_params.py

Each model is built by :func:`mmaction2_ref.build` from its config (the config's class count, 8 segments)
and counted as ``sum(p.numel() for p in model.parameters())``.
"""

import json
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)

# isort: split
import mmaction
from mmaction2_ref import ALL, build


def main() -> None:
    out = {"source": f"mmaction2 {mmaction.__version__}", "models": {}}
    for name, (config, backbone, head) in ALL.items():
        model = build(name)
        out["models"][name] = {
            "config": config,
            "overrides": {"backbone": backbone, "cls_head": head},
            "num_classes": model.cls_head.num_classes,
            "params": sum(p.numel() for p in model.parameters()),
        }
        print(name, out["models"][name]["num_classes"], out["models"][name]["params"])
    path = Path(__file__).with_name("params_mmaction2.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
