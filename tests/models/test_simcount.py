"""SimCount: the self-similarity head's matrix, shapes and the fixed frame count, and that it reads counts off
periodic frame features it has not seen (where the frames' mean, what average-consensus heads see, says nothing)."""

import math

import pytest
import torch

from vidlab.errors import InputError
from vidlab.models import create_model, get_model_info, list_models
from vidlab.models.simcount import SelfSimilarityHead
from vidlab.tasks.counting import CountingTask


def test_registered_as_counting_models_with_the_anchor_head_outputs():
    assert list_models(task="counting") == ["simcount_r18", "simcount_r50"]
    model = create_model("simcount_r18")
    assert model.num_classes == CountingTask().num_outputs == 39
    assert model(torch.randn(2, 3, 16, 32, 32)).shape == (2, 39)
    assert model.forward_head(model.forward_features(torch.randn(1, 3, 16, 32, 32)), pre_logits=True).shape == (1, 512)
    with pytest.raises(InputError, match="num_segments=16 frames, got T=8"):
        model(torch.randn(1, 3, 8, 32, 32))
    resnet18 = 11_176_512  # torchvision's resnet18 without its fc
    head = 512 * 128 + 128 + 1 * 32 * 9 + 32 + 32 * 16 * 16 * 512 + 512 + 512 * 39 + 39
    assert get_model_info("simcount_r18").num_params() == resnet18 + head
    model.reset_classifier(5)
    assert model(torch.randn(1, 3, 16, 32, 32)).shape == (1, 5)


def test_similarity_rows_are_distributions_and_repeat_with_the_frames():
    head = SelfSimilarityHead(8, 3, 12)
    frames = torch.randn(1, 4, 8).repeat(1, 3, 1)  # 4 frames shown 3 times: period 4
    s = head.similarity(frames)[0]
    torch.testing.assert_close(s.sum(-1), torch.ones(12))
    torch.testing.assert_close(s[:4, :4], s[4:8, 4:8])
    torch.testing.assert_close(s[:, 0], s[:, 4])


def _periodic(counts: torch.Tensor, t: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """Frame features ``(B, dim, T, 1, 1)`` of a motion repeated ``count`` times: a random phase, a random
    projection of (cos, sin) of the cycle, noise."""
    phase = torch.rand(len(counts), 1, generator=gen) * 2 * math.pi
    angle = 2 * math.pi * counts[:, None] * torch.arange(t) / t + phase  # (B, T)
    proj = torch.randn(len(counts), 2, dim, generator=gen)
    x = torch.stack([angle.cos(), angle.sin()], -1) @ proj + 0.1 * torch.randn(len(counts), t, dim, generator=gen)
    return x.transpose(1, 2)[..., None, None]


def test_the_head_counts_periodic_frames_it_has_not_seen():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    task, t = CountingTask(), 16
    head = SelfSimilarityHead(16, task.num_outputs, t, embed_dim=16, channels=8, hidden_dim=64, dropout=0.0)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(150):
        counts = torch.randint(1, 6, (32,)).float()
        loss = task.loss(head(_periodic(counts, t, 16, gen)), counts, [])
        opt.zero_grad()
        loss.backward()
        opt.step()
    counts = torch.arange(1, 6).float().repeat(20)
    x = _periodic(counts, t, 16, gen)
    with torch.no_grad():
        right = (task.decode(head(x)) == counts).float().mean().item()
    assert right >= 0.9, right
    # the frames' mean (what an average consensus pools) carries no count: the same for every count, up to noise
    assert x.mean(dim=2).abs().max() < 0.6
