"""Write tests/assets/ava_mmaction2_parity.json: per-box scores and losses of MMAction2's AVA detectors at small input.

Run in the reference environment (MMAction2 1.2.0 with mmcv-lite, not a vidlab dependency)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_mmaction2_ava_fixture.py

Cases: the configs ``detection/slowonly/slowonly_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py`` (vidlab
``slowonly_r50_4x16_ava``) and ``detection/slowfast/slowfast_kinetics400-pretrained-r50_8xb16-4x16x1-20e_ava21-rgb.py``
(``slowfast_r50_4x16_ava``), full ResNet-50 size, on a small clip (2 x 3 x 4 x 128 x 128, SlowFast 2 x 3 x 32 x 128 x
128) and 6 boxes. What runs, and what it is checked against:

- backbone: MMAction2's own ``ResNet3dSlowOnly`` / ``ResNet3dSlowFast`` built from ``model.backbone`` of the config
  (``spatial_strides=(1, 2, 2, 1)``: an 8 x 8 map at stride 16);
- RoI feature extraction: MMAction2's own ``SingleRoIExtractor3D`` from ``model.roi_head.bbox_roi_extractor``
  (SlowFast: pathways resized to the longest one by nearest interpolation, temporal average, slow then fast
  channels concatenated), with ``mmcv.ops.RoIAlign`` (a compiled op mmcv-lite lacks) replaced by
  :class:`RoIAlignLoop` below, a plain per-box, per-bin, per-sample loop written from the op's definition (box scaled
  by 1/16 and shifted by -0.5 with ``aligned=True``, ``ceil(roi / 8)`` samples per bin with ``sampling_ratio=0``,
  bilinear samples that are 0 beyond one pixel outside the map and clamped otherwise, bin average). So the RoIAlign
  in this fixture is that loop, not mmcv's kernel (vidlab's ``roi_align`` has its own tests,
  ``tests/models/test_roi_align.py``);
- classifier and loss: MMAction2's own ``BBoxHeadAVA`` from ``model.roi_head.bbox_head`` (81 classes, class 0 the
  background; temporal average, spatial max pool, fc), eval mode (dropout off); per-box scores are the sigmoid of
  the 80 non-background logits. ``BBoxHeadAVA.loss_and_target`` on the fixture's 81-column logits and targets (per
  image the boxes with actions first, then boxes without, as mmdet's sampler orders them; ``pos_weight=1``), with
  the config's loss (``focal_alpha=1, focal_gamma=0``: BCE) and with ``focal_alpha=0.25, focal_gamma=2``.

No weights are stored: every float tensor of the detector's state dict (``backbone.*`` + ``roi_head.bbox_head.*``,
the keys mmdet's ``FastRCNN`` gives them) is set by :func:`fixture_fill.fill` of its key and shape (the integer
``num_batches_tracked`` kept), so the test rebuilds the same weights from the key list. The JSON holds per case:
``config``, ``keys`` (``[name, shape, dtype]``), ``fill_checksum``, ``input_seed`` / ``input_shape`` (the clip is
``torch.randn(input_shape, generator=torch.Generator().manual_seed(input_seed))``), ``rois`` (``[batch index, x1,
y1, x2, y2]`` in input pixels), ``cls_score`` (the 81 logits of each box, background first), ``scores`` (sigmoid
of the 80 others), ``targets`` (80 columns, multi-hot; rows of zeros are boxes without actions) and ``losses``
(``[{"focal_alpha", "focal_gamma", "loss"}]``, MMAction2's ``loss_action_cls``).

``BBoxHeadAVA``'s module imports mmdet's ``SamplingResult`` for type hints; a placeholder module stands in and the
sampling results are plain objects with the three fields ``get_targets`` reads.
"""

import json
import os
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if os.path.isdir("/work/shared/refs"):
    sys.path.insert(0, "/work/shared/refs")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import refshim  # noqa: F401,E402  (must precede mmaction)
import torch  # noqa: E402
from fixture_fill import checksum, fill_state_dict  # noqa: E402
from make_ava_detector_keys import MMACTION2_CONFIGS, build_mmaction2, detector_state_dict  # noqa: E402
from roi_align_reference import roi_align_loop  # noqa: E402

torch.set_num_threads(1)
OUT = os.path.join(HERE, "ava_mmaction2_parity.json")
INPUT_SEED = 1234
TARGET_SEED = 7
INPUT_SHAPES = {"slowonly_r50_4x16_ava": (2, 3, 4, 128, 128), "slowfast_r50_4x16_ava": (2, 3, 32, 128, 128)}
# [batch index, x1, y1, x2, y2] in input pixels; per image the boxes with actions first (POSITIVE), then one without
ROIS = [
    [0, 10.3, 12.7, 90.2, 120.5],
    [0, 60.0, 5.5, 127.9, 70.25],  # reaches the right edge
    [0, 0.0, 0.0, 20.4, 30.6],
    [1, 30.5, 40.2, 70.8, 100.1],
    [1, -8.0, 50.0, 40.0, 135.0],  # partly outside the frame
    [1, 100.0, 100.0, 104.0, 106.0],  # smaller than a feature cell
]
POSITIVE = [True, True, False, True, True, False]
FOCAL = [(1.0, 0.0), (0.25, 2.0)]  # (focal_alpha, focal_gamma)


class RoIAlignLoop(torch.nn.Module):
    """Stand-in for ``mmcv.ops.RoIAlign`` (average pool mode) as a plain loop: ``forward(feat (N, C, H, W), rois
    (K, 5)) -> (K, C, out, out)``."""

    def __init__(self, output_size, spatial_scale, sampling_ratio=0, pool_mode="avg", aligned=True):
        super().__init__()
        assert pool_mode == "avg"
        self.out = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
        self.scale, self.ratio, self.aligned = float(spatial_scale), int(sampling_ratio), aligned

    def forward(self, feat: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        out = roi_align_loop(feat, rois, self.out, self.scale, self.ratio, self.aligned)
        return out.to(feat.dtype)


def build_extractor(cfg):
    """MMAction2's ``SingleRoIExtractor3D`` of the config, ``mmcv.ops.RoIAlign`` replaced by :class:`RoIAlignLoop`."""
    from mmaction.models.roi_heads.roi_extractors.single_straight3d import SingleRoIExtractor3D

    kwargs = dict(cfg.model.roi_head.bbox_roi_extractor)
    assert kwargs.pop("type") == "SingleRoIExtractor3D"
    saved = sys.modules.get("mmcv.ops")
    sys.modules["mmcv.ops"] = types.SimpleNamespace(RoIAlign=RoIAlignLoop, RoIPool=None)
    try:
        extractor = SingleRoIExtractor3D(**kwargs)
    finally:
        if saved is None:
            del sys.modules["mmcv.ops"]
        else:
            sys.modules["mmcv.ops"] = saved
    assert isinstance(extractor.roi_layer, RoIAlignLoop)
    assert extractor.roi_layer.out == (8, 8) and extractor.spatial_scale == 1 / 16 and extractor.aligned
    return extractor.eval()


def make_targets(num_classes: int) -> torch.Tensor:
    """Multi-hot targets (K, num_classes): 1-3 actions on the positive boxes, none on the others."""
    gen = torch.Generator().manual_seed(TARGET_SEED)
    targets = torch.zeros(len(ROIS), num_classes)
    for k, pos in enumerate(POSITIVE):
        if pos:
            n = int(torch.randint(1, 4, (1,), generator=gen))
            targets[k, torch.randperm(num_classes, generator=gen)[:n]] = 1.0
    return targets


def mmaction2_losses(head, cls_score: torch.Tensor, rois: torch.Tensor, targets: torch.Tensor) -> list[dict]:
    """``BBoxHeadAVA.loss_and_target`` with each (alpha, gamma) of :data:`FOCAL`."""
    from mmengine.config import ConfigDict

    labels81 = torch.cat([targets.new_zeros(len(targets), 1), targets], dim=1)  # class 0: background, never set
    results = []
    for b in rois[:, 0].unique().tolist():
        rows = (rois[:, 0] == b).nonzero().flatten().tolist()
        pos = [r for r in rows if POSITIVE[r]]
        neg = [r for r in rows if not POSITIVE[r]]
        assert rows == pos + neg, "per image: boxes with actions first"
        results.append(
            types.SimpleNamespace(pos_priors=rois[pos, 1:], neg_priors=rois[neg, 1:], pos_gt_labels=labels81[pos])
        )
    out = []
    for alpha, gamma in FOCAL:
        head.focal_alpha, head.focal_gamma = alpha, gamma
        res = head.loss_and_target(cls_score, rois, results, ConfigDict(pos_weight=1.0))
        assert torch.equal(res["bbox_targets"][0], labels81)  # the targets are the boxes' own, in order
        out.append({"focal_alpha": alpha, "focal_gamma": gamma, "loss": float(res["loss_bbox"]["loss_action_cls"])})
    head.focal_alpha, head.focal_gamma = 1.0, 0.0
    return out


def make_case(name: str, config: str) -> dict:
    torch.manual_seed(0)
    backbone, head, cfg = build_mmaction2(config)
    extractor = build_extractor(cfg)
    sd = detector_state_dict(backbone, head)
    filled = fill_state_dict(sd)
    backbone.load_state_dict({k[len("backbone.") :]: v for k, v in filled.items() if k.startswith("backbone.")})
    head.load_state_dict({k[len("roi_head.bbox_head.") :]: v for k, v in filled.items() if k.startswith("roi_head.")})
    assert not any(m.training for m in (*backbone.modules(), *head.modules(), *extractor.modules()))
    shape = INPUT_SHAPES[name]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(INPUT_SEED))
    rois = torch.tensor(ROIS, dtype=torch.float32)
    with torch.no_grad():
        feats = backbone(x)
        roi_feats, _ = extractor(feats, rois)
        cls_score = head(roi_feats)
    assert cls_score.shape == (len(ROIS), 81)
    targets = make_targets(80)
    with torch.no_grad():
        losses = mmaction2_losses(head, cls_score, rois, targets)
    scores = cls_score[:, 1:].sigmoid()
    print(
        f"{name}: |cls_score| max {cls_score.abs().max():.3f}, scores in [{scores.min():.4f}, {scores.max():.4f}], "
        f"losses {[round(v['loss'], 6) for v in losses]}"
    )
    return {
        "config": config,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
        "fill_checksum": checksum(filled),
        "input_seed": INPUT_SEED,
        "input_shape": list(shape),
        "rois": ROIS,
        "cls_score": cls_score.tolist(),
        "scores": scores.tolist(),
        "targets": targets.tolist(),
        "losses": losses,
    }


def main() -> None:
    import mmaction

    result = {
        "source": f"MMAction2 {mmaction.__version__} (RoIAlign: the loop of make_mmaction2_ava_fixture.py)",
        "cases": {name: make_case(name, config) for name, config in MMACTION2_CONFIGS.items()},
    }
    with open(OUT, "w") as f:
        json.dump(result, f, separators=(",", ":"))
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
