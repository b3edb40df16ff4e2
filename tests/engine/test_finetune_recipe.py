"""The fine-tuning recipe features wired through the config: Mixup / CutMix with soft targets in a training step,
random erasing, repeated augmentation, the head's init scale, and the config errors."""

import numpy as np
import pytest
import torch

from tests.helpers import write_indexed_video
from vidlab.config import Config, ConfigError, load_config
from vidlab.data.batch_transforms import RandomErasing
from vidlab.data.datasets import VideoDataset, VideoItem, collate
from vidlab.data.mixup import Mixup, soft_target_cross_entropy
from vidlab.data.sampling import SampleFrames
from vidlab.engine.builders import build_dataset, build_model, build_task, scale_head_init
from vidlab.engine.distributed import DistInfo
from vidlab.engine.evaluate import to_input
from vidlab.engine.train import train_step
from vidlab.tasks import RecognitionTask


class _Spy(torch.nn.Module):
    """Pools the clip and classifies it; keeps the input it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 5)

    def forward(self, x):
        self.seen = x.detach().clone()
        return self.fc(x.mean(dim=(2, 3, 4)))


def test_training_step_with_mixup_and_erasing_uses_soft_targets():
    cfg = Config()
    gen = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (4, 2, 4, 8, 8, 3), dtype=torch.uint8, generator=gen)  # 4 videos x 2 views
    labels = torch.tensor([0, 1, 2, 3])
    mixup = Mixup(5, mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, generator=torch.Generator().manual_seed(1))
    task = RecognitionTask(label_smoothing=0.1, mixup=mixup)
    task.erasing = RandomErasing(prob=1.0, generator=torch.Generator().manual_seed(2))
    seen_targets = []
    criterion = task.criterion
    task.criterion = lambda out, t: seen_targets.append(t) or criterion(out, t)
    torch.manual_seed(0)
    model = _Spy()
    loss = train_step(model, {"imgs": imgs, "label": labels}, task, DistInfo(), mean=cfg.data.mean, std=cfg.data.std)
    (t,) = seen_targets
    assert t.dtype == torch.float32 and t.shape == (8, 5)
    assert torch.allclose(t.sum(1), torch.ones(8)) and t.max() < 0.92  # mixed, smoothed: no row is one class
    assert ((t > 0.021).sum(1) == 2).all()  # two classes each: the clip's and its partner's
    clean = to_input(imgs, cfg.data.mean, cfg.data.std, torch.device("cpu")).flatten(0, 1)
    assert model.seen.shape == clean.shape and not torch.allclose(model.seen, clean)
    with torch.no_grad():
        expected = soft_target_cross_entropy(model.fc(model.seen.mean(dim=(2, 3, 4))), t)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert model.fc.weight.grad is not None and model.fc.weight.grad.abs().sum() > 0


def test_build_task_wires_mixup_and_erasing_from_the_config():
    default = build_task(load_config(None, ["data.pairs=null"]))
    assert default.mixup is None and default.erasing is None
    x, y = torch.zeros(2, 3, 1, 4, 4), torch.tensor([0, 1])
    assert default.augment_batch(x, y) == (x, y)
    cfg = load_config(
        None,
        [
            "data.pairs=null",
            "mixup.mixup_alpha=0.8",
            "mixup.cutmix_alpha=1.0",
            "train.label_smoothing=0.1",
            "data.random_erasing={prob: 0.25, mode: pixel, count: 1}",
        ],
    )
    task = build_task(cfg)
    m = task.mixup
    assert (m.mixup_alpha, m.cutmix_alpha, m.prob, m.switch_prob, m.mode) == (0.8, 1.0, 1.0, 0.5, "batch")
    assert m.label_smoothing == 0.1 and m.num_classes == cfg.model.num_classes
    e = task.erasing
    assert (e.prob, e.mode, e.count, e.min_area, e.max_area, e.min_aspect) == (0.25, "pixel", 1, 0.02, 1 / 3, 0.3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["mixup.mixup_alpha=0.8", "data.multi_label=true"], "data.multi_label=true"),
        (["mixup.cutmix_alpha=1", "task=regression"], "task regression"),
        (["mixup.mode=half"], "mixup.mode"),
        (["mixup.prob=1.5"], "mixup.prob"),
        (["mixup.cutmix_minmax=[0.5]"], "mixup.cutmix_minmax"),
        (["data.repeated_aug=0"], "data.repeated_aug"),
        (["data.repeated_aug=2", "data.format=features"], "data.repeated_aug"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


@pytest.mark.parametrize("spec", ["{mode: noise}", "{probability: 0.3}", "0.25"])
def test_bad_random_erasing_is_a_config_error(spec):
    with pytest.raises(ConfigError, match="data.random_erasing"):
        build_task(load_config(None, ["data.pairs=null", f"data.random_erasing={spec}"]))


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("videomae_vit_s", {"embed_dim": 32, "depth": 1, "num_heads": 2, "img_size": 32, "num_frames": 4}),
        ("videomamba_ti", {"embed_dim": 32, "depth": 1, "img_size": 32, "num_frames": 2}),
        ("linear_probe", {"in_features": 8}),
    ],
)
def test_head_init_scale_multiplies_the_fresh_classifier(name, kwargs):
    built = []
    for scale in (1.0, 0.001):
        cfg = load_config(None, [f"model.name={name}", f"model.head_init_scale={scale}"])
        cfg.model.kwargs = dict(kwargs)
        torch.manual_seed(0)
        built.append(build_model(cfg))
    fc = [m.fc if name == "linear_probe" else m.head.fc for m in built]
    assert torch.allclose(fc[1].weight, fc[0].weight * 0.001) and fc[0].weight.abs().max() > 0.001
    rest = [{k: v for k, v in m.state_dict().items() if "fc." not in k} for m in built]
    assert rest[0].keys() == rest[1].keys() and all(torch.equal(rest[0][k], rest[1][k]) for k in rest[0])
    with torch.no_grad():
        fc[0].bias.fill_(0.5)  # the references start the bias at 0; it is scaled all the same
    scale_head_init(built[0], cfg)
    assert torch.allclose(fc[0].bias, torch.full_like(fc[0].bias, 0.0005))


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory):
    root = tmp_path_factory.mktemp("repeated_aug")
    write_indexed_video(root / "v.mp4", num_frames=16, size=(48, 32))
    return root


class _Marker:
    """A pipeline that paints each run's draw into the frames and derives the label from it (a flip with a label
    map changes labels too)."""

    def __call__(self, results):
        k = int(results["rng"].integers(0, 1000))
        results["imgs"] = torch.full_like(results["imgs"], k % 256)
        results["label"] = k % 2
        results.setdefault("draws", []).append(k)
        return results


def test_repeated_augmentation_decodes_once_and_augments_each_repeat(tiny_video):
    items = [VideoItem(str(tiny_video / "v.mp4"), [0]), VideoItem(str(tiny_video / "v.mp4"), [1])]
    sampler = SampleFrames(clip_len=2, frame_interval=3, num_clips=1, test_mode=True)  # draws nothing
    dataset = VideoDataset(items, sampler, _Marker(), 2, seed=4, repeated_aug=3)
    out = dataset[1]
    rng = np.random.default_rng([4, 0, 1])  # the sample's generator: one draw per repeat
    draws = [int(rng.integers(0, 1000)) for _ in range(3)]
    assert out["imgs"].shape == (3, 2, 32, 48, 3)
    assert [int(v[0, 0, 0, 0]) for v in out["imgs"]] == [k % 256 for k in draws]
    assert out["view_label"].tolist() == [k % 2 for k in draws] and int(out["label"]) == draws[0] % 2
    batch = collate([dataset[0], out])
    targets = RecognitionTask().targets(batch, torch.device("cpu"), views=3)
    assert (
        targets.tolist() == batch["view_label"].flatten().tolist()
        and targets[3:].tolist() == out["view_label"].tolist()
    )

    same = VideoDataset(items, sampler, lambda r: r, 2, repeated_aug=2)[0]
    assert torch.equal(same["imgs"][0], same["imgs"][1])  # the frames were decoded once: one clip, two copies
    single = VideoDataset(items, sampler, lambda r: r, 2)[0]
    assert "view_label" not in single and torch.equal(single["imgs"][0], same["imgs"][0])


def test_repeated_augmentation_applies_to_the_training_split_only(tiny_video):
    for split in ("train", "val"):
        (tiny_video / f"{split}.txt").write_text("v.mp4 0\n")
    cfg = load_config(None, [f"data.root={tiny_video}", "data.label_map=null", "data.repeated_aug=3"])
    assert build_dataset(cfg, "train").repeated_aug == 3
    assert build_dataset(cfg, "val").repeated_aug == 1
