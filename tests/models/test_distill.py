"""Masked teacher distillation (:mod:`vidlab.models.distill`, :mod:`vidlab.engine.distill_builder`): the guided mask,
the frozen teacher outside the state dict, the loss, gradients, checkpoints that load into the plain student, and
the config path."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import vidlab
from vidlab.config import Config, ConfigError, load_config
from vidlab.models import create_model
from vidlab.models.clip import CLIP_MEAN, CLIP_STD
from vidlab.models.distill import MaskedDistiller, draw_guided_mask, on_grid, return_indices

CLIP_TINY = dict(img_size=32, width=32, depth=3, num_heads=4, output_dim=24)  # 2x2 patches of 16 per frame
MAMBA_TINY = dict(img_size=32, num_frames=4, embed_dim=16, depth=3, d_state=4)
VIT_TINY = dict(img_size=32, num_frames=4, embed_dim=16, depth=2, num_heads=2)  # tubelet 2: a 2x2x2 grid


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> None:
    """Same shape and max abs difference <= atol (lighter than torch.testing, which imports torch.distributed)."""
    assert a.shape == b.shape, (tuple(a.shape), tuple(b.shape))
    diff = (a.double() - b.double()).abs().max().item()
    assert diff <= atol, f"max abs diff {diff:.3g} > {atol:g}"


def _clip_teacher() -> nn.Module:
    torch.manual_seed(1)
    return create_model("clip_vit_b16", **CLIP_TINY)


def _mamba(**kwargs) -> nn.Module:
    torch.manual_seed(2)
    return create_model("videomamba_ti", num_classes=5, **{**MAMBA_TINY, **kwargs})


def test_return_indices_follow_umt():
    assert return_indices(12, 6) == [6, 7, 8, 9, 10, 11]  # UMT's ViT-B recipe: the last six blocks
    assert return_indices(24, 1) == [23]
    assert return_indices(24, 3, 2.5) == [18, 21, 23]  # depth - int(i * interval) - 1
    with pytest.raises(ValueError, match="do not fit 4 blocks"):
        return_indices(4, 6)


def test_guided_mask_keeps_the_count_and_follows_the_guide():
    torch.manual_seed(0)
    guide = torch.rand(6, 196)
    torch.manual_seed(1)
    mask = draw_guided_mask(guide, 0.8)
    assert mask.dtype == torch.bool and ((~mask).sum(1) == 196 - int(196 * 0.8)).all()  # 40 visible per frame
    torch.manual_seed(1)
    assert torch.equal(draw_guided_mask(guide, 0.8), mask)  # the global RNG decides: reproducible
    peaked = torch.full((50, 10), 1e-4)
    peaked[:, 3] = 1e4
    peaked[:, 7] = 0.0  # an all-zero token can still be drawn (last)
    m = draw_guided_mask(peaked, 0.7)
    assert ((~m).sum(1) == 3).all() and not m[:, 3].any()  # the heavy token is always visible
    assert ((~draw_guided_mask(peaked, 0.0)).sum(1) == 10).all()
    with pytest.raises(ValueError, match="leaves no visible token"):
        draw_guided_mask(torch.ones(2, 4), 1.0)


def test_teacher_is_frozen_and_outside_state_dict_and_parameters():
    teacher = _clip_teacher()
    d = MaskedDistiller(_mamba(), teacher, student_layers=[2], teacher_layers=[2])
    ids = {id(p) for p in teacher.parameters()}
    assert not ids & {id(p) for p in d.parameters()}
    assert not any(k.startswith("teacher") or "blocks." in k for k in d.state_dict())  # CLIP's keys are blocks.N
    assert d.teacher is teacher and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    d.train()
    assert d.student.training and not teacher.training
    d.to(torch.float64)  # the teacher follows the distiller's .to()
    assert teacher.backbone.proj.dtype == torch.float64 == d.student.backbone.cls_token.dtype
    assert not d.student.head.fc.weight.requires_grad  # the classifier takes no part: frozen for DDP / optimizers


def test_visible_tokens_keep_cls_first_and_token_order():
    """With every mixer's output projection at zero the blocks pass the stem's tokens through, so the visible run
    shows exactly which tokens the student saw."""
    student = _mamba()
    for layer in student.backbone.layers:
        nn.init.zeros_(layer.mixer.out_proj.weight)
    x = torch.randn(2, 3, 4, 32, 32)
    d = MaskedDistiller(student, _clip_teacher(), student_layers=[2], teacher_layers=[2], mask_ratio=0.5)
    mask = d(x)["mask"]  # (B, T'N) over patch tokens only
    assert mask.shape == (2, 16) and ((~mask).view(2, 4, 4).sum(-1) == 2).all()
    out, _ = student.backbone.forward_visible(x, mask)
    full, _ = student.backbone.forward_visible(x, None)
    assert out.shape == (2, 1 + 8, 16)
    assert torch.equal(out[:, 0], full[:, 0])  # the class token, always visible, first
    assert torch.equal(out[:, 1:], full[:, 1:][~mask].view(2, 8, 16))  # the visible ones, in token order


class _Echo(nn.Module):
    """A teacher whose features are the distiller's own decoded student features on the whole clip (with its class
    token): the student matches them exactly wherever it sees what the teacher saw."""

    def __init__(self, holder: list) -> None:
        super().__init__()
        self.holder = holder
        self.num_intermediates = 3

    def forward_teacher(self, x, layers, ln_post=True):
        d = self.holder[0]
        _, feats = d.student.backbone.forward_visible(x, None, tuple(d.student_layers))
        t = d.student.backbone.patch_embed.proj(x).shape[2:]
        pos = d._positions(feats[0].shape[1], feats[0].shape[-1], x.device, x.dtype)
        ys = [F.normalize(dec(d.student.backbone.norm_f(f) + pos), dim=-1) for dec, f in zip(d.align.decoders, feats)]
        maps = [y[:, 1:].transpose(1, 2).unflatten(2, t) for y in ys]
        return maps, [y[:, 0] for y in ys], torch.rand(x.shape[0], *t)


def test_loss_is_zero_when_the_student_reproduces_the_teacher():
    student = _mamba()
    for layer in student.backbone.layers:  # no token mixing: visible tokens' features equal the full clip's
        nn.init.zeros_(layer.mixer.out_proj.weight)
    holder = []
    d = MaskedDistiller(
        student, _Echo(holder), student_layers=[1, 2], teacher_layers=[1, 2], teacher_dims=[8, 8], mask_ratio=0.75
    )
    holder.append(d)
    assert d.align_cls and d.guide == "attention"
    out = d(torch.randn(2, 3, 4, 32, 32))
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-5)
    assert out["layer_losses"].shape == (2,) and out["layer_losses"].abs().max() < 1e-5
    out = d(torch.randn(2, 3, 4, 32, 32), mask=torch.roll(out["mask"], 1, dims=1))  # a given mask is used as is
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("student_name", ["videomamba", "vit"])
def test_tiny_distiller_trains_student_and_decoders_only(student_name):
    teacher = _clip_teacher()
    if student_name == "vit":
        torch.manual_seed(3)
        student = create_model("videomae_vit_s", num_classes=5, **VIT_TINY)
        layers = dict(student_layers=[0, 1], teacher_layers=[1, 2])
    else:
        student, layers = _mamba(), dict(student_layers=[1, 2], teacher_layers=[1, 2])
    d = MaskedDistiller(student, teacher, mask_ratio=0.5, **layers).train()
    torch.manual_seed(0)
    out = d(torch.randn(2, 3, 4, 32, 32))
    assert 0.0 < out["loss"].item() < 4.0 and torch.isfinite(out["layer_losses"]).all()
    out["loss"].backward()
    trained = [(n, p) for n, p in d.named_parameters() if p.requires_grad]
    assert any(n.startswith("align.decoders.1.") for n, _ in trained)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in trained), [
        n for n, p in trained if p.grad is None or not p.grad.abs().sum()
    ]
    assert all(p.grad is None for p in teacher.parameters())
    assert all(
        p.grad is None for n, p in d.named_parameters() if n.startswith(("student.head.", "student.backbone.fc_norm."))
    )
    ids = {d.layer_id(n) for n, _ in trained}
    assert min(ids) == 0 and max(ids) == d.num_layers + 1  # the decoders are after the student's last block
    if student_name == "vit":  # a ViT with mean pooling has no final norm: the distiller owns UMT's encoder norm
        assert hasattr(d.align, "norm") and out["mask"].shape == (2, 8)


def test_cnn_teacher_guides_by_feature_norm_on_the_student_grid():
    torch.manual_seed(4)
    teacher = create_model("tsm_r18", num_classes=3, num_segments=4)
    d = MaskedDistiller(_mamba(), teacher, student_layers=[1, 2], teacher_layers=[2, 3], probe_shape=(3, 4, 32, 32))
    assert d.guide == "norm" and not d.align_cls and [m.head.out_features for m in d.align.decoders] == [256, 512]
    x = torch.randn(2, 3, 4, 32, 32)
    targets = d.teacher_targets(x)  # on the teacher's grid: stride 16 (the student's 2x2) and 32 (1x1)
    assert [tuple(m.shape) for m in targets.maps] == [(2, 256, 4, 2, 2), (2, 512, 4, 1, 1)]
    _close(targets.guide, targets.maps[1].norm(dim=1))
    assert torch.equal(on_grid(targets.maps[0], (4, 2, 2)), targets.maps[0])
    up = on_grid(targets.maps[1], (4, 2, 2))  # a 1x1 map interpolated onto 2x2: every position the same
    assert up.shape == (2, 512, 4, 2, 2) and torch.allclose(up, targets.maps[1].expand_as(up))
    _close(on_grid(up, (2, 1, 1)), targets.maps[1].view(2, 512, 2, 2).mean(-1, keepdim=True)[..., None])
    out = d(x)
    assert torch.isfinite(out["loss"]) and ((~out["mask"]).view(2, 4, 4).sum(-1) == 4 - int(4 * 0.8)).all()


def test_saved_distiller_loads_into_the_plain_student(tmp_path):
    d = MaskedDistiller(_mamba(), _clip_teacher(), student_layers=[1, 2], teacher_layers=[1, 2])
    with torch.no_grad():
        for p in d.parameters():
            p.add_(torch.randn_like(p))
    sd = d.state_dict()
    own = create_model("videomamba_ti", num_classes=5, **MAMBA_TINY).state_dict()
    align = {k for k in sd if k.startswith("align.")}
    assert set(sd) == {"student." + k for k in own} | align and align
    path = tmp_path / "epoch_1.pth"
    torch.save({"model": sd, "meta": {"model": "videomamba_ti"}}, path)
    student = create_model("videomamba_ti", num_classes=5, **MAMBA_TINY)
    report = vidlab.load_checkpoint(student, path, strict=False)
    assert report["source"] == "vidlab" and report["missing"] == []
    assert report["unexpected"] == sorted(k for k in sd if k.startswith("align."))
    assert all(torch.equal(v, sd["student." + k]) for k, v in student.state_dict().items())
    again = MaskedDistiller(_mamba(), _clip_teacher(), student_layers=[1, 2], teacher_layers=[1, 2])
    again.load_state_dict(sd)  # resuming: the distiller reads its own layout back, strictly
    assert all(torch.equal(v, sd[k]) for k, v in again.state_dict().items())
    fresh = MaskedDistiller(_mamba(), _clip_teacher(), student_layers=[1, 2], teacher_layers=[1, 2])
    report = vidlab.load_checkpoint(fresh, path)  # model.pretrained of a distillation run: all of it fits
    assert not report["missing"] and not report["unexpected"]
    assert all(torch.equal(v, sd[k]) for k, v in fresh.state_dict().items())


def _teacher_file(tmp_path):
    teacher = _clip_teacher()
    path = tmp_path / "clip_tiny.pth"
    torch.save({"model": teacher.state_dict(), "meta": {"model": "clip_vit_b16", "kwargs": CLIP_TINY}}, path)
    return teacher, path


@pytest.fixture()
def plain_kwargs(monkeypatch):
    """``build_model`` with ``model.kwargs`` as they are: the student's builder arguments need no probe here (the
    probe builds the student on the meta device, whose first use costs seconds of imports)."""
    from vidlab.engine import builders

    monkeypatch.setattr(builders, "model_kwargs", lambda cfg, checkpoint=None: dict(cfg.model.kwargs))


def _config(path, *overrides) -> Config:
    cfg = load_config(overrides=["task=pretrain", f"distill.teacher={path}", "model.name=videomamba_ti", *overrides])
    cfg.model.kwargs = dict(MAMBA_TINY)
    cfg.model.num_classes = 5
    return cfg


def test_config_builds_the_distiller(tmp_path, plain_kwargs):
    from vidlab.engine.builders import build_model
    from vidlab.engine.optim import param_groups

    teacher, path = _teacher_file(tmp_path)
    d = build_model(_config(path, "distill.return_layers=2", "distill.mask_ratio=0.5"))
    assert isinstance(d, MaskedDistiller) and d.student_layers == [1, 2] and d.teacher_layers == [1, 2]
    assert all(torch.equal(p, q) for p, q in zip(d.teacher.parameters(), teacher.parameters()))
    data_mean, data_std = torch.tensor(Config().data.mean), torch.tensor(Config().data.std)
    clip_mean, clip_std = torch.tensor(CLIP_MEAN) * 255, torch.tensor(CLIP_STD) * 255
    _close(d._scale.flatten(), data_std / clip_std)
    _close(d._shift.flatten(), (data_mean - clip_mean) / clip_std)
    groups = param_groups(d, lr=1.0, weight_decay=0.05, layer_decay=0.9)
    assert {g["layer_id"] for g in groups} == set(range(d.num_layers + 2))
    assert all(n in d.no_weight_decay() for g in groups if g["weight_decay"] == 0 for n in g["names"] if "pos" in n)
    assert torch.isfinite(d(torch.randn(1, 3, 4, 32, 32))["loss"])


def test_config_errors_name_the_key(tmp_path, plain_kwargs):
    from vidlab.engine.builders import build_model

    _, path = _teacher_file(tmp_path)
    with pytest.raises(ConfigError, match="distill.teacher: file not found"):
        build_model(_config(tmp_path / "none.pth"))
    with pytest.raises(ConfigError, match="distill.return_layers / return_interval, teacher CLIPViT"):
        build_model(_config(path, "distill.return_layers=3", "distill.return_interval=2"))
    with pytest.raises(ConfigError, match="distill.teacher is set but task is recognition"):
        load_config(overrides=[f"distill.teacher={path}"])
    with pytest.raises(ConfigError, match="distill.teacher_mean .* looks like \\[0, 1\\] units"):
        load_config(overrides=["task=pretrain", "distill.teacher_mean=[0.48,0.46,0.41]", "distill.teacher_std=[1,1,1]"])
    with pytest.raises(ConfigError, match="distill.guide"):
        load_config(overrides=["distill.guide=random"])
    cfg = _config(path)
    cfg.model.name, cfg.model.kwargs = "tsm_r18", {}
    with pytest.raises(ConfigError, match="model.name=tsm_r18 cannot be a distillation student"):
        build_model(cfg)
