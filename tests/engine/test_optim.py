"""Parameter groups: no weight decay for norms/biases/position tables, layer-wise lr decay, freezing."""

import pytest
import torch

from tests.models.test_models import TINY_KWARGS
from vidlab.config import OptimConfig
from vidlab.engine.optim import apply_freeze, build_optimizer, build_scheduler, frozen_names, param_groups
from vidlab.models import create_model

# a ViT, a VideoMamba, a 3D CNN and a 2D CNN
MODELS = {
    "videomae_vit_s": TINY_KWARGS["videomae"],
    "videomamba_ti": TINY_KWARGS["videomamba"],
    "slowonly_r50_8x8": {},
    "tsm_r18": {},
}


def _lrs(optimizer) -> dict[str, tuple[float, float]]:
    return {n: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for n in g["names"]}


@pytest.mark.parametrize("name", list(MODELS))
def test_layer_decay_gives_every_parameter_lr_times_decay_power(name):
    """lr * decay ** (L + 1 - layer_id): VideoMAE's LayerDecayValueAssigner (the head keeps the full lr)."""
    model = create_model(name, num_classes=5, **MODELS[name])
    cfg = OptimConfig(name="adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    lrs = _lrs(build_optimizer(model, cfg, global_batch=8))
    L = model.num_layers
    assert L >= 2
    names = [n for n, _ in model.named_parameters()]
    assert set(lrs) == set(names)
    ids = {n: model.layer_id(n) for n in names}
    assert min(ids.values()) == 0 and max(ids.values()) == L + 1 and len(set(ids.values())) == L + 2
    for n, p in model.named_parameters():
        assert lrs[n][0] == pytest.approx(1e-3 * 0.75 ** (L + 1 - ids[n]), rel=1e-12), n
        no_decay = p.ndim <= 1 or n in model.no_weight_decay()
        assert lrs[n][1] == (0.0 if no_decay else 0.05), n
    head = [n for n in names if n.startswith("head.")]
    assert head and all(lrs[n][0] == pytest.approx(1e-3) for n in head)


def test_no_decay_groups_by_name():
    model = create_model("videomae_vit_s", num_classes=5, **TINY_KWARGS["videomae"], learnable_pos_embed=True)
    groups = param_groups(model, lr=0.1, weight_decay=0.05)
    no_decay = {n for g in groups if g["weight_decay"] == 0 for n in g["names"]}
    decay = {n for g in groups if g["weight_decay"] > 0 for n in g["names"]}
    assert "backbone.pos_embed" in no_decay
    assert {"backbone.blocks.0.norm1.weight", "backbone.blocks.0.attn.proj.bias", "head.fc.bias"} <= no_decay
    assert {"backbone.blocks.0.attn.qkv.weight", "backbone.blocks.0.mlp.fc1.weight", "head.fc.weight"} <= decay
    everything = param_groups(model, lr=0.1, weight_decay=0.05, decay_norm_bias=True)
    assert [g["weight_decay"] for g in everything] == [0.05]  # MMAction2: one group, decay everywhere


def test_scheduler_keeps_each_groups_lr_scale():
    model = create_model("tsm_r18", num_classes=5)
    cfg = OptimConfig(name="sgd", lr=0.1, layer_decay=0.5, scheduler="constant", warmup_epochs=1)
    opt = build_optimizer(model, cfg, global_batch=8)
    sched = build_scheduler(opt, cfg, epochs=2, iters_per_epoch=10)
    for _ in range(10):  # through the warmup
        opt.step()
        sched.step()
    assert sorted({g["lr"] / g["lr_scale"] for g in opt.param_groups}) == [pytest.approx(0.1)]


def test_freeze_backbone_keeps_frozen_batchnorm_in_eval_mode():
    model = create_model("tsm_r18", num_classes=5)
    frozen = frozen_names(model, "backbone")
    assert frozen and all(not n.startswith("head.") for n in frozen)
    assert set(frozen) | {"head.fc.weight", "head.fc.bias"} == {n for n, _ in model.named_parameters()}
    model.train()
    apply_freeze(model, frozen)
    bn = model.backbone.layer1[0].bn1
    assert not bn.training and not bn.weight.requires_grad
    before = bn.running_mean.clone()
    model(torch.randn(2, 3, 4, 32, 32)).sum().backward()
    assert torch.equal(bn.running_mean, before)  # statistics frozen too
    assert model.head.fc.weight.grad is not None and bn.weight.grad is None
    groups = param_groups(model, lr=0.1, weight_decay=1e-4)
    assert {n for g in groups for n in g["names"]} == {"head.fc.weight", "head.fc.bias"}


def test_freeze_stages():
    model = create_model("tsm_r18", num_classes=5)
    frozen = set(frozen_names(model, "stages:2"))
    assert "backbone.conv1.weight" in frozen and "backbone.layer2.0.conv1.weight" in frozen
    assert not any(n.startswith(("backbone.layer3", "backbone.layer4", "head")) for n in frozen)
    with pytest.raises(ValueError, match="stages"):
        frozen_names(model, f"stages:{model.num_layers + 1}")
