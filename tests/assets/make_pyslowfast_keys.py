"""Generate tests/assets/pyslowfast_keys.json (PySlowFast native state-dict keys and shapes) and parity fixtures.

The fixture lists every ``state_dict()`` entry (parameters and buffers, including BatchNorm
``running_mean``/``running_var``/``num_batches_tracked``), in state-dict order, of PySlowFast's
(facebookresearch/SlowFast) ``SlowFast`` model for ``configs/Kinetics/SLOWFAST_8x8_R50.yaml``
and ``X3D`` model for ``configs/Kinetics/X3D_S.yaml`` (Kinetics-400 head, 400 classes).
The models are really built from PySlowFast's own code (random init, CPU); nothing of
PySlowFast is copied into this project, only the key names and shapes are recorded.

How it was run (SlowFast commit 287ec0076846560f44a9327e931a5a2360240533; the source was
extracted with ``git --git-dir=<mirror> archive HEAD slowfast configs | tar -x -C
/tmp/slowfast_src``), in the reference environment that has torch, fvcore, iopath and
pytorchvideo 0.1.5::

    OMP_NUM_THREADS=1 /tmp/refs/ptv/bin/python tests/assets/make_pyslowfast_keys.py \
        /tmp/slowfast_src --commit 287ec0076846560f44a9327e931a5a2360240533

(``--commit`` is only needed when the source tree is not a git checkout; ``--out`` defaults
to ``pyslowfast_keys.json`` next to this script, ``--fixtures-dir`` to this script's directory.)

Parity fixtures ``pyslowfast_slowfast_r50.json`` and ``pyslowfast_x3d_s.json`` (same format as
``pytorchvideo_<hub>.json`` from ``make_pytorchvideo_fixtures.py``: ``source``, ``model``,
``num_classes``, ``keys`` as ``[name, shape, dtype]`` in state-dict order, ``fill_checksum``,
``input_seed``, ``input_shape``, ``logits``). Each model is rebuilt from the same config with
``cfg.MODEL.NUM_CLASSES = 5`` and the data config shrunk to a small clip: SlowFast
``cfg.DATA.NUM_FRAMES = 16`` (fast pathway; slow gets 16 / ``SLOWFAST.ALPHA`` = 4), X3D-S
``NUM_FRAMES = 4``, both ``TRAIN_CROP_SIZE = TEST_CROP_SIZE = 32``. PySlowFast's heads use a fixed
``AvgPool3d`` whose kernel is derived from these values ([4, 1, 1] slow and [16, 1, 1] fast for
SlowFast, [4, 1, 1] for X3D-S after ``conv_5``); that equals the final feature map, i.e. a global
average, which the script asserts at run time, so the pools are left as built (no
``AdaptiveAvgPool3d`` substitution). The model is put in eval mode (dropout and X3D's
drop-connect inactive) and ``model.head.act`` (the softmax PySlowFast applies when not training)
is replaced by ``nn.Identity()``, so the output is logits. No weights are stored: every float
state-dict tensor is overwritten by :func:`fixture_fill.fill` (key, shape), ``num_batches_tracked``
kept, and loaded strictly. Input ``x = torch.randn(input_shape,
generator=torch.Generator().manual_seed(1234))``, (1, 3, 16, 32, 32) for SlowFast, fed as
``[x[:, :, ::4].contiguous(), x]`` (slow, fast), and (1, 3, 4, 32, 32) for X3D-S, fed as ``[x]``;
logits under ``torch.no_grad()``. Checked against vidlab (``convert_state_dict(sd,
source="pyslowfast")`` into ``create_model("slowfast_r50_8x8", num_classes=5, lateral_norm=True)``
with the single (1, 3, 16, 32, 32) clip, resp. ``create_model("x3d_s", num_classes=5)``): max abs
logit difference 6.5e-07 (SlowFast) and 1.1e-07 (X3D-S).

Stubs installed before importing ``slowfast`` (none is used while building these two models):

- ``/work/shared/refs/refshim.py`` (imported first when present, as for all reference
  scripts here) stubs ``torchvision``, which the env lacks; nothing imported below uses it.
- ``detectron2.layers.ROIAlign``: imported at module level by ``head_helper`` for the AVA
  detection head (``ResNetRoIHead``), which Kinetics models do not build.
- ``pytorchvideo.layers.distributed.{cat_all_gather, get_local_process_group, get_local_rank,
  get_local_size, init_distributed_training}``: missing from the PyPI pytorchvideo 0.1.5 that
  the reference env has (SlowFast targets pytorchvideo master); imported by
  ``slowfast.utils.distributed`` but only called in multi-process training. Added as
  placeholder functions on the real module.
- ``pytorchvideo.losses.soft_target_cross_entropy.SoftTargetCrossEntropyLoss``: absent from
  pytorchvideo 0.1.5; imported at module level by ``slowfast.models.losses`` (training loss).
- ``slowfast/models/__init__.py`` is skipped (an empty package module with the real
  ``__path__`` is registered): it imports ``contrastive``/``masked``/``ptv_model_builder``,
  which pull ``slowfast.utils.misc`` -> ``torchvision.io``, ``matplotlib``,
  ``slowfast.datasets``; ``video_model_builder`` and its helpers are imported for real.
- ``simplejson`` (not in the env): imported by ``slowfast.utils.logging`` for JSON stat logs.
  ``fairscale`` is also absent, but ``video_model_builder`` already guards that import.
  ``_stub_if_missing`` adds a module only when the real one cannot be imported.

``num_params`` is the sum of ``numel`` over ``model.parameters()`` (buffers excluded).
A PySlowFast checkpoint file (``slowfast/utils/checkpoint.py::save_checkpoint``) is a dict
``{"epoch", "model_state", "optimizer_state", "cfg"}``; the listed keys are those of
``checkpoint["model_state"]`` (saved from the unwrapped module, so no ``module.`` prefix).
"""

import json
import os
import sys
import types

os.environ.setdefault("OMP_NUM_THREADS", "1")

if os.path.isdir("/work/shared/refs"):
    sys.path.insert(0, "/work/shared/refs")
    import refshim  # noqa: F401,E402

import torch  # noqa: E402

torch.set_num_threads(1)

MODELS = {
    "slowfast_r50": ("configs/Kinetics/SLOWFAST_8x8_R50.yaml", "SlowFast"),
    "x3d_s": ("configs/Kinetics/X3D_S.yaml", "X3D"),
}

# Parity fixtures: input (B, C, T, H, W); cfg.DATA.NUM_FRAMES = T (fast pathway for SlowFast), crop = H = W.
NUM_CLASSES = 5
INPUT_SEED = 1234
FIXTURE_INPUTS = {
    "slowfast_r50": (1, 3, 16, 32, 32),
    "x3d_s": (1, 3, 4, 32, 32),
}


def _stub(name, **attrs):
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent:
        if parent not in sys.modules:
            _stub(parent)
        setattr(sys.modules[parent], child, mod)
    return mod


def _stub_if_missing(name, **attrs):
    try:
        __import__(name)
    except Exception:
        _stub(name, **attrs)


class _Unused(torch.nn.Module):
    def __init__(self, *a, **k):
        super().__init__()
        raise RuntimeError("stubbed module used during model construction")


def _unused_fn(*a, **k):
    raise RuntimeError("stubbed function used during model construction")


def install_stubs():
    # pytorchvideo 0.1.5 (PyPI) predates the distributed helpers that slowfast.utils.distributed
    # imports from its master branch; they are only called for multi-process training.
    import pytorchvideo.layers.distributed as ptv_dist

    for fn in (
        "cat_all_gather",
        "get_local_process_group",
        "get_local_rank",
        "get_local_size",
        "init_distributed_training",
    ):
        if not hasattr(ptv_dist, fn):
            setattr(ptv_dist, fn, _unused_fn)
    _stub_if_missing("pytorchvideo.losses.soft_target_cross_entropy", SoftTargetCrossEntropyLoss=_Unused)
    _stub_if_missing("detectron2.layers", ROIAlign=_Unused)
    _stub_if_missing("simplejson")
    # Bare ``slowfast.models`` package: its __init__ also imports ContrastiveModel/MaskMViT and
    # the PTV builders (-> slowfast.utils.misc -> torchvision.io, matplotlib, slowfast.datasets),
    # none of which the SlowFast/X3D classes use. Submodules load from the real directory.
    import slowfast

    pkg = types.ModuleType("slowfast.models")
    pkg.__path__ = [os.path.join(os.path.dirname(slowfast.__file__), "models")]
    sys.modules["slowfast.models"] = pkg
    slowfast.models = pkg


def git_commit(src, given):
    if given:
        return given
    import subprocess

    try:
        return subprocess.check_output(
            ["git", "-C", src, "rev-parse", "HEAD"], text=True, stderr=subprocess.DEVNULL
        ).strip()
    except Exception as err:
        raise SystemExit("source is not a git checkout: pass --commit <sha>") from err


def build(src, cfg_path, cls_name, fixture=None):
    """Build a PySlowFast model; ``fixture`` = (num_frames, crop) shrinks it for a parity fixture."""
    from slowfast.config.defaults import assert_and_infer_cfg, get_cfg
    from slowfast.models import video_model_builder as vmb

    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(src, cfg_path))
    cfg.NUM_GPUS = 0
    cfg.NUM_SHARDS = 1
    if fixture is not None:
        cfg.MODEL.NUM_CLASSES = NUM_CLASSES
        cfg.DATA.NUM_FRAMES, crop = fixture
        cfg.DATA.TRAIN_CROP_SIZE = cfg.DATA.TEST_CROP_SIZE = crop
    cfg = assert_and_infer_cfg(cfg)
    if fixture is None:
        assert cfg.MODEL.NUM_CLASSES == 400
    model = getattr(vmb, cls_name)(cfg)
    model.eval()
    return model, cfg


def _head_pools(model):
    return [m for n, m in model.head.named_modules() if isinstance(m, (torch.nn.AvgPool3d, torch.nn.AdaptiveAvgPool3d))]


def make_fixture(src, commit, name, out_dir):
    """Write ``pyslowfast_<name>.json``: key layout and logits of the filled, shrunk model (see the docstring)."""
    from fixture_fill import checksum, fill_state_dict

    cfg_path, cls_name = MODELS[name]
    shape = FIXTURE_INPUTS[name]
    torch.manual_seed(0)
    model, cfg = build(src, cfg_path, cls_name, fixture=(shape[2], shape[3]))
    # The head's AvgPool3d kernels are computed from NUM_FRAMES / crop; check they cover the whole final map
    # (a global average). Record the final feature map sizes with hooks on the pools.
    seen = []
    hooks = [
        p.register_forward_hook(lambda m, i, o: seen.append((m, tuple(i[0].shape[2:])))) for p in _head_pools(model)
    ]
    model.head.act = torch.nn.Identity()  # eval-mode softmax -> logits
    sd = model.state_dict()
    filled = fill_state_dict(sd)
    model.load_state_dict(filled, strict=True)
    model.eval()
    assert not any(m.training for m in model.modules())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED))
    inputs = [x[:, :, :: cfg.SLOWFAST.ALPHA].contiguous(), x] if cls_name == "SlowFast" else [x]
    with torch.no_grad():
        logits = model(inputs)
    for h in hooks:
        h.remove()
    assert seen, "no head pool ran"
    for m, size in seen:
        kernel = tuple(m.kernel_size) if isinstance(m, torch.nn.AvgPool3d) else size
        assert kernel == size, f"{name}: head pool kernel {kernel} != final map {size}"
    out = {
        "source": f"facebookresearch/SlowFast {commit}, {cfg_path}",
        "model": name,
        "num_classes": NUM_CLASSES,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(shape),
        "logits": logits.tolist(),
    }
    path = os.path.join(out_dir, f"pyslowfast_{name}.json")
    with open(path, "w") as f:
        f.write(json.dumps(out) + "\n")
    print(f"wrote {path}: {len(sd)} keys, head pools {[s for _, s in seen]}, |logits|max {logits.abs().max():.3f}")


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="path to a facebookresearch/SlowFast source tree")
    ap.add_argument("--commit", help="SlowFast commit of src (default: git rev-parse HEAD)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyslowfast_keys.json"))
    ap.add_argument(
        "--fixtures-dir", default=os.path.dirname(os.path.abspath(__file__)), help="where pyslowfast_<model>.json go"
    )
    args = ap.parse_args()
    src = os.path.abspath(args.src)
    out = args.out
    commit = git_commit(src, args.commit)
    sys.path.insert(0, src)
    install_stubs()
    result = {"source": "facebookresearch/SlowFast " + commit, "models": {}}
    for name, (cfg_path, cls_name) in MODELS.items():
        torch.manual_seed(0)
        model, _ = build(src, cfg_path, cls_name)
        sd = model.state_dict()
        result["models"][name] = {
            "config": cfg_path,
            "num_params": int(sum(p.numel() for p in model.parameters())),
            "keys": [[k, list(v.shape)] for k, v in sd.items()],
        }
        print(name, len(sd), result["models"][name]["num_params"])
    with open(out, "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", out, os.path.getsize(out), "bytes")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # fixture_fill
    for name in FIXTURE_INPUTS:
        make_fixture(src, commit, name, args.fixtures_dir)


if __name__ == "__main__":
    main()
