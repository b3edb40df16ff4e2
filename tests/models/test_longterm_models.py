"""Long inputs: a short-clip VideoMamba / ViT checkpoint in a 32-frame model (VideoMamba's temporal interpolation),
activation checkpointing and chunked multi-view inference give the same numbers as the plain paths."""

import pytest
import torch
import torch.nn.functional as F

from vidlab.models import create_model

TINY = dict(img_size=32, embed_dim=48, depth=2)


def _videomamba_temporal_resize(table: torch.Tensor, new_t: int) -> torch.Tensor:
    """VideoMamba's run_class_finetuning.py (--orig_t_size): permute to (1, C, T), 1-D linear, align_corners=False."""
    return F.interpolate(table.permute(0, 2, 1), size=(new_t,), mode="linear", align_corners=False).permute(0, 2, 1)


@pytest.mark.parametrize("new_t", [32, 64])
def test_short_clip_checkpoint_in_a_long_videomamba(new_t):
    torch.manual_seed(0)
    short = create_model("videomamba_ti", num_classes=5, num_frames=8, **TINY)
    with torch.no_grad():
        short.backbone.temporal_pos_embedding.normal_()
    long = create_model("videomamba_ti", num_classes=5, num_frames=new_t, **TINY)
    state, notes = long.adapt_state_dict(short.state_dict())
    assert any("temporal_pos_embedding" in n for n in notes)
    want = _videomamba_temporal_resize(short.backbone.temporal_pos_embedding.detach(), new_t)
    torch.testing.assert_close(state["backbone.temporal_pos_embedding"], want, rtol=1e-6, atol=1e-6)
    long.load_state_dict(state)
    assert long(torch.randn(1, 3, new_t, 32, 32)).shape == (1, 5)


def test_activation_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = create_model("videomamba_ti", num_classes=3, num_frames=16, **TINY)
    ckpt = create_model("videomamba_ti", num_classes=3, num_frames=16, use_checkpoint=True, **TINY)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 32, 32)
    grads = []
    for model in (plain, ckpt):
        model.train()
        model(x).square().sum().backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("average_clips", ["prob", "score", None, "max"])
def test_chunked_views_equal_one_forward(average_clips):
    torch.manual_seed(0)
    model = create_model("x3d_s", num_classes=4).eval()
    x = torch.randn(2, 5, 3, 4, 32, 32)
    with torch.no_grad():
        whole = model.forward_views(x, average_clips=average_clips)
        model.view_chunk = 3  # 10 clips in forwards of 3, 3, 3, 1
        chunked = model.forward_views(x, average_clips=average_clips)
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)


def test_short_clip_vit_table_in_a_32_frame_vit():
    """A learnable space-time table (VideoMAE-style ViT, tubelet 2): VideoMamba's fine-tuning script resizes it per
    spatial position along time, linearly, told the checkpoint's frames (--orig_t_size); so does vidlab given
    ``source_frames`` (``model.pretrained_frames``). A fixed sin-cos table is recomputed for the new grid instead."""
    torch.manual_seed(0)
    kw = dict(img_size=32, depth=1, learnable_pos_embed=True)
    short = create_model("videomae_vit_s", num_classes=3, num_frames=8, **kw)
    with torch.no_grad():
        short.backbone.pos_embed.normal_()
    long = create_model("videomae_vit_s", num_classes=3, num_frames=32, **kw)
    guessed, notes = long.adapt_state_dict(short.state_dict())  # T / S closest to the model's: read as 16x1x1
    assert notes == ["backbone.pos_embed: resized from grid 16x1x1 to grid 16x2x2"]
    state, notes = long.adapt_state_dict(short.state_dict(), source_frames=8)  # VideoMamba's --orig_t_size 8
    assert notes == ["backbone.pos_embed: resized from grid 4x2x2 to grid 16x2x2"]
    table = short.backbone.pos_embed.detach()  # (1, 4 * 2 * 2, C): T' = 8 / 2 tubelets, 2x2 patches
    c = table.shape[-1]
    per_position = table.view(1, 4, 4, c).permute(0, 2, 3, 1).reshape(-1, c, 4)
    resized = F.interpolate(per_position, size=(16,), mode="linear", align_corners=False)
    want = resized.reshape(1, 4, c, 16).permute(0, 3, 1, 2).flatten(1, 2)
    torch.testing.assert_close(state["backbone.pos_embed"], want, rtol=1e-5, atol=1e-5)
    fixed = create_model("videomae_vit_s", num_classes=3, num_frames=32, img_size=32, depth=1)
    state, notes = fixed.adapt_state_dict(short.state_dict())
    assert "backbone.pos_embed" not in state and any("recomputed" in n for n in notes)
