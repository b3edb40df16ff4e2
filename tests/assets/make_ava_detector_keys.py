"""Write tests/assets/ava_detector_keys.json: the state-dict keys and shapes of AVA action detectors, as MMAction2
and PySlowFast build them (random init, CPU). Only key names and shapes are recorded.

Two sections, each written by one run in the reference environment that has that toolbox (the other section of
an existing file is kept):

``mmaction2`` (MMAction2 1.2.0, mmcv-lite)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_ava_detector_keys.py mmaction2

MMAction2's AVA detector is mmdet's ``FastRCNN``: ``backbone`` + ``roi_head`` (``AVARoIHead``: a
``SingleRoIExtractor3D`` whose RoIAlign has no parameters, and a ``BBoxHeadAVA``). mmdet and mmcv's compiled ops are
not installed, so the detector itself cannot be built; its two pieces with parameters are built from the configs
``detection/slowonly/slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py`` and
``detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py`` (``model.backbone`` via
MMAction2's registry, ``model.roi_head.bbox_head`` as ``BBoxHeadAVA``) and their keys are joined as the detector
names them: ``backbone.*`` + ``roi_head.bbox_head.*``. The data preprocessor holds no state. ``BBoxHeadAVA``'s module
imports ``mmdet.models.task_modules.samplers.SamplingResult`` for type hints only; a placeholder module stands in.

``pyslowfast`` (facebookresearch/SlowFast source tree, the PyTorchVideo reference env)::

    OMP_NUM_THREADS=1 /tmp/refs/ptv/bin/python tests/assets/make_ava_detector_keys.py pyslowfast /tmp/slowfast_src \
        --commit 287ec0076846560f44a9327e931a5a2360240533

``SlowFast`` / ``ResNet`` of ``video_model_builder`` built from ``configs/AVA/SLOWFAST_32x2_R50_SHORT.yaml`` and
``configs/AVA/SLOW_8x8_R50_SHORT.yaml`` (``DETECTION.ENABLE: True``: the head is ``ResNetRoIHead``, whose only
parameters are ``head.projection``). The stubs of ``make_pyslowfast_keys.py`` are installed, except that
detectron2's ``ROIAlign`` (no parameters, not run here) is a parameter-free placeholder module. The keys are those of
a checkpoint's ``model_state``.
"""

import argparse
import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "ava_detector_keys.json")
sys.path.insert(0, HERE)
if os.path.isdir("/work/shared/refs"):
    sys.path.insert(0, "/work/shared/refs")
os.environ.setdefault("OMP_NUM_THREADS", "1")

MMACTION2_CONFIGS = {
    "slowonly_r50_4x16_ava": "detection/slowonly/slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py",
    "slowfast_r50_4x16_ava": "detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py",
}
PYSLOWFAST_CONFIGS = {
    "SLOWFAST_32x2_R50_SHORT": ("configs/AVA/SLOWFAST_32x2_R50_SHORT.yaml", "SlowFast"),
    "SLOW_8x8_R50_SHORT": ("configs/AVA/SLOW_8x8_R50_SHORT.yaml", "ResNet"),
}


def _entry(sd, model=None) -> dict:
    out = {"keys": [[k, list(v.shape)] for k, v in sd.items()]}
    if model is not None:
        out["num_params"] = int(sum(p.numel() for p in model.parameters()))
    return out


def stub_mmdet_sampling_result() -> None:
    """``bbox_head.py`` imports ``SamplingResult`` from mmdet (not installed) for annotations only."""
    for name in ("mmdet", "mmdet.models", "mmdet.models.task_modules", "mmdet.models.task_modules.samplers"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["mmdet.models.task_modules.samplers"].SamplingResult = object


def build_mmaction2(config_rel: str):
    """``(backbone, bbox_head, config)`` of an MMAction2 AVA detector config (random init, eval mode)."""
    import refshim  # noqa: F401  (must precede mmaction)

    stub_mmdet_sampling_result()
    import mmaction
    from mmaction.models.roi_heads.bbox_heads.bbox_head import BBoxHeadAVA
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    from mmengine.config import Config

    register_all_modules()
    cfg = Config.fromfile(os.path.join(os.path.dirname(mmaction.__file__), ".mim", "configs", config_rel))
    backbone_cfg = dict(cfg.model.backbone)
    backbone_cfg["type"] = backbone_cfg["type"].removeprefix("mmaction.")
    head_cfg = dict(cfg.model.roi_head.bbox_head)
    assert head_cfg.pop("type") == "BBoxHeadAVA"
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    head = BBoxHeadAVA(**head_cfg)
    head.init_weights()
    extractor = cfg.model.roi_head.bbox_roi_extractor
    assert extractor.type == "SingleRoIExtractor3D" and not extractor.get("with_global", False)
    backbone.eval()  # MMAction2's ResNet3d.train() returns None: no chaining
    head.eval()
    return backbone, head, cfg


def detector_state_dict(backbone, head) -> dict:
    """The keys mmdet's ``FastRCNN`` gives these pieces (no neck, no RPN; the RoI extractor has no parameters)."""
    sd = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    sd.update({f"roi_head.bbox_head.{k}": v for k, v in head.state_dict().items()})
    return sd


def run_mmaction2() -> dict:
    import torch

    torch.manual_seed(0)
    out = {"source": "MMAction2 1.2.0", "models": {}}
    for name, config in MMACTION2_CONFIGS.items():
        backbone, head, _ = build_mmaction2(config)
        sd = detector_state_dict(backbone, head)
        entry = _entry(sd)
        entry["config"] = config
        entry["num_params"] = int(sum(p.numel() for m in (backbone, head) for p in m.parameters()))
        out["models"][name] = entry
        print(name, len(sd), "keys", entry["num_params"], "params")
    return out


def run_pyslowfast(src: str, commit: str | None) -> dict:
    import torch
    from make_pyslowfast_keys import _stub, git_commit, install_stubs

    commit = git_commit(src, commit)
    sys.path.insert(0, src)

    class ROIAlign(torch.nn.Module):  # detectron2's op: no parameters, not run here
        def __init__(self, *args, **kwargs):
            super().__init__()

    _stub("detectron2.layers", ROIAlign=ROIAlign)
    install_stubs()
    from slowfast.config.defaults import assert_and_infer_cfg, get_cfg
    from slowfast.models import head_helper
    from slowfast.models import video_model_builder as vmb

    out = {"source": f"facebookresearch/SlowFast {commit}", "models": {}}
    for name, (cfg_path, cls_name) in PYSLOWFAST_CONFIGS.items():
        cfg = get_cfg()
        cfg.merge_from_file(os.path.join(src, cfg_path))
        cfg.NUM_GPUS, cfg.NUM_SHARDS = 0, 1
        cfg = assert_and_infer_cfg(cfg)
        assert cfg.DETECTION.ENABLE and cfg.MODEL.NUM_CLASSES == 80
        torch.manual_seed(0)
        model = getattr(vmb, cls_name)(cfg).eval()
        assert isinstance(model.head, head_helper.ResNetRoIHead)
        sd = model.state_dict()
        entry = _entry(sd, model)
        entry["config"] = cfg_path
        entry["spatial_dilations"] = [list(d) for d in cfg.RESNET.SPATIAL_DILATIONS]
        entry["roi_resolution"] = int(cfg.DETECTION.ROI_XFORM_RESOLUTION)
        out["models"][name] = entry
        print(name, len(sd), "keys", entry["num_params"], "params")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", choices=("mmaction2", "pyslowfast"))
    ap.add_argument("src", nargs="?", help="pyslowfast: a facebookresearch/SlowFast source tree")
    ap.add_argument("--commit", help="pyslowfast: commit of src (default: git rev-parse HEAD)")
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    if args.source == "mmaction2":
        section = run_mmaction2()
    else:
        if not args.src:
            ap.error("pyslowfast needs the SlowFast source tree")
        section = run_pyslowfast(os.path.abspath(args.src), args.commit)
    result = {}
    if os.path.isfile(args.out):
        with open(args.out) as f:
            result = json.load(f)
    result[args.source] = section
    with open(args.out, "w") as f:
        json.dump(dict(sorted(result.items())), f, separators=(",", ":"))
        f.write("\n")
    print("wrote", args.out, os.path.getsize(args.out), "bytes")


if __name__ == "__main__":
    main()
