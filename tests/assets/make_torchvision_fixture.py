"""Write tests/assets/torchvision_r2plus1d_18.json: torchvision's ``r2plus1d_18`` keys and logits for a fixed input.

torchvision is not a vidlab dependency, and a torchvision wheel whose compiled ops do not match the installed torch
cannot be imported; but its ``models/video/resnet.py`` is pure PyTorch. This script loads that one file (given as
argument, e.g. from an unpacked wheel: ``pip download --no-deps torchvision==0.28.0`` and unzip) under its own
module name, ``torchvision.models.video.resnet``, with the package modules it imports from replaced by small stubs::

    .venv/bin/python tests/assets/make_torchvision_fixture.py /tmp/tvsrc/torchvision/models/video/resnet.py

Stubs (none of them shapes the network):

- ``torchvision.utils._log_api_usage_once``: a no-op (the real one only logs API usage); called by ``VideoResNet``.
- ``torchvision.models._api``: ``register_model`` (identity decorator), ``Weights`` (a record of url, transforms
  and meta), ``WeightsEnum`` (a plain class whose ``verify`` passes ``None`` through, as the real one does for
  ``weights=None``, and refuses anything else: no pretrained weights are loaded).
- ``torchvision.models._utils``: ``handle_legacy_interface`` (identity decorator; it only maps the old
  ``pretrained=`` argument), ``_ovewrite_named_param`` (only called when weights are given), ``_ModelURLs`` (dict).
- ``torchvision.models._meta._KINETICS400_CATEGORIES`` (only weights metadata) and
  ``torchvision.transforms._presets.VideoClassification`` (only weights metadata: the preset transforms).

The model is built as ``r2plus1d_18(weights=None)`` (400 classes, for the parameter count) and with
``num_classes=5``, in eval mode. As for the MMAction2 fixtures (see ``make_mmaction2_fixtures.py``), no weights are
stored: every state-dict tensor except ``num_batches_tracked`` is overwritten by :func:`fixture_fill.fill`.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fixture_fill import checksum, fill_state_dict  # noqa: E402  (beside this script)

NUM_CLASSES = 5
INPUT_SEED = 1234
INPUT_SHAPE = (1, 3, 8, 32, 32)
MODULE = "torchvision.models.video.resnet"


def _module(name: str, package: bool = False, **attrs: Any) -> types.ModuleType:
    mod = types.ModuleType(name)
    if package:
        mod.__path__ = []  # a namespace to resolve the relative imports against, with nothing to find in it
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    return mod


def _install_stubs() -> None:
    if "torchvision" in sys.modules:
        raise RuntimeError("a torchvision module is already imported; run this script in a fresh interpreter")

    @dataclass
    class Weights:
        url: str
        transforms: Any
        meta: dict = field(default_factory=dict)

    class WeightsEnum:
        @classmethod
        def verify(cls, obj: Any) -> Any:
            if obj is not None:
                raise ValueError("stubbed torchvision: only weights=None is supported")
            return None

    def register_model(name: str | None = None):
        return lambda fn: fn

    def handle_legacy_interface(**weights: Any):
        return lambda fn: fn

    def _ovewrite_named_param(kwargs: dict, param: str, new_value: Any) -> None:
        raise AssertionError("not reached with weights=None")

    class VideoClassification:  # only named in weights metadata
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise AssertionError("stubbed torchvision: preset transforms are not available")

    _module("torchvision", package=True)
    _module("torchvision.utils", _log_api_usage_once=lambda obj: None)
    _module("torchvision.transforms", package=True)
    _module("torchvision.transforms._presets", VideoClassification=VideoClassification)
    _module("torchvision.models", package=True)
    _module("torchvision.models._api", register_model=register_model, Weights=Weights, WeightsEnum=WeightsEnum)
    _module("torchvision.models._meta", _KINETICS400_CATEGORIES=[f"class_{i}" for i in range(400)])
    _module(
        "torchvision.models._utils",
        handle_legacy_interface=handle_legacy_interface,
        _ovewrite_named_param=_ovewrite_named_param,
        _ModelURLs=dict,
    )
    _module("torchvision.models.video", package=True)


def load_resnet(path: Path) -> types.ModuleType:
    """Torchvision's ``models/video/resnet.py`` at ``path``, imported against the stubs."""
    _install_stubs()
    spec = importlib.util.spec_from_file_location(MODULE, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = mod
    spec.loader.exec_module(mod)
    return mod


def torchvision_version(path: Path) -> str:
    """``__version__`` from the ``version.py`` of the same torchvision tree (local suffix like ``+cu130`` dropped)."""
    version_py = path.resolve().parents[2] / "version.py"
    if version_py.is_file():
        m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", version_py.read_text(), re.M)
        if m:
            return m.group(1).split("+", 1)[0]
    return "unknown version"


def main(resnet_py: Path) -> None:
    torch.set_num_threads(1)
    tv = load_resnet(resnet_py)
    num_params_400 = sum(p.numel() for p in tv.r2plus1d_18(weights=None).parameters())
    model = tv.r2plus1d_18(weights=None, num_classes=NUM_CLASSES).eval()
    sd = model.state_dict()
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    x = torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(INPUT_SEED))
    with torch.no_grad():
        logits = model(x)
    out = {
        "source": f"torchvision {torchvision_version(resnet_py)}, torchvision/models/video/resnet.py r2plus1d_18",
        "model": "r2plus1d_r18",
        "kwargs": {},
        "num_classes": NUM_CLASSES,
        "recognizer_2d": False,
        "num_params_400": num_params_400,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(INPUT_SHAPE),
        "logits": logits.tolist(),
    }
    path = Path(__file__).with_name("torchvision_r2plus1d_18.json")
    path.write_text(json.dumps(out) + "\n")
    print(
        f"wrote {path}: {len(sd)} keys, {num_params_400} params (400 classes), logits {tuple(logits.shape)}, "
        f"|logits|max {logits.abs().max():.3f}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} path/to/torchvision/models/video/resnet.py")
    main(Path(sys.argv[1]))
