"""train.strategy=fsdp and train.activation_checkpointing: FSDP2 under torchrun (gloo) trains as DDP does, its
checkpoints are those of a single process, and checkpointed blocks change neither numbers nor state-dict keys."""

import copy
import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO, write_tiny_recipe
from vidlab.config import ConfigError, TrainConfig, load_config
from vidlab.data.datasets import read_label_map
from vidlab.engine import parallel
from vidlab.engine.distributed import DistInfo
from vidlab.engine.evaluate import TrainForward
from vidlab.models import create_model
from vidlab.models.convert import load_checkpoint

pytestmark = pytest.mark.dist
WORKER = REPO / "tests" / "engine" / "fsdp_worker.py"
TINY_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 2, "patch_size": 8, "img_size": 32, "num_frames": 4}
EPOCHS = 5
# one optimizer step of two micro-batches per epoch (FSDP's deferred gradient sync), clipped gradients, and an odd
# validation set (5 videos, 2 per batch: 2 batches on rank 0, 1 on rank 1) evaluated after the last epoch
COMMON = [
    "model.name=videomae_vit_s",
    "model.kwargs={" + ", ".join(f"{k}: {v}" for k, v in TINY_VIT.items()) + "}",
    "data.input_format=NCTHW",
    "data.train_sampler={type: SampleFrames, clip_len: 4, frame_interval: 1, num_clips: 1}",
    "data.val_sampler={type: SampleFrames, clip_len: 4, frame_interval: 1, num_clips: 1, test_mode: true}",
    "data.batch_size=2",
    "data.val_batch_size=2",
    "optim.name=adamw",
    "optim.lr=0.001",
    "optim.grad_clip=1.0",
    "train.amp=none",
    "train.accum_steps=2",
    f"train.epochs={EPOCHS}",
    "train.max_iters_per_epoch=1",
    f"train.val_interval={EPOCHS}",
    f"train.max_keep_ckpts={EPOCHS}",
    "device=cpu",
]


@pytest.fixture(scope="module")
def runs(synth_tiny, tmp_path_factory):
    """Three 2-process runs in one torchrun launch: DDP; FSDP with activation checkpointing; FSDP resumed from the
    DDP run's checkpoint of the epoch before the last."""
    tmp = tmp_path_factory.mktemp("fsdp")
    recipe = write_tiny_recipe(synth_tiny, tmp / "tiny.yaml")
    dirs = {name: tmp / name for name in ("ddp", "fsdp", "resumed")}
    spec = [
        {"work_dir": str(dirs["ddp"]), "overrides": [*COMMON, "train.strategy=ddp"], "resume": None},
        {
            "work_dir": str(dirs["fsdp"]),
            "overrides": [*COMMON, "train.strategy=fsdp", "train.activation_checkpointing=true"],
            "resume": None,
        },
        {
            "work_dir": str(dirs["resumed"]),
            "overrides": [*COMMON, "train.strategy=fsdp"],
            "resume": str(dirs["ddp"] / f"epoch_{EPOCHS - 1}.pth"),
        },
    ]
    (tmp / "runs.json").write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [*cmd, str(WORKER), str(recipe), str(tmp / "runs.json")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    results = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 3  # rank 0 of each run
    return {**dirs, "results": dict(zip(dirs, results))}


def _metrics(work_dir) -> list[dict]:
    return [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]


def _ckpt(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_same_training_state(a: dict, b: dict) -> None:
    """Model and optimizer state dicts of two checkpoints: same keys and layout, values within 1e-5."""
    assert list(a["model"]) == list(b["model"])
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-5, msg=k)
    # a resumed optimizer keeps the loaded file's lists where a fresh one has tuples (AdamW's betas)
    lists = [
        [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in ckpt["optimizer"]["param_groups"]]
        for ckpt in (a, b)
    ]
    assert lists[0] == lists[1]
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for i, state in a["optimizer"]["state"].items():
        for k, v in state.items():
            torch.testing.assert_close(v, b["optimizer"]["state"][i][k], rtol=0, atol=1e-5, msg=f"{i}.{k}")


def test_fsdp_trains_as_ddp(runs):
    """Five optimizer steps (each of two micro-batches, gradients clipped) give DDP's losses, validation and final
    weights and optimizer state; the FSDP run also checkpoints its blocks' activations."""
    ddp, fsdp = _metrics(runs["ddp"]), _metrics(runs["fsdp"])
    assert [m["epoch"] for m in ddp] == [m["epoch"] for m in fsdp] == list(range(1, EPOCHS + 1))
    for a, b in zip(ddp, fsdp):
        assert abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
    assert {k: v for k, v in ddp[-1].items() if k.startswith("val_")} == {
        k: v for k, v in fsdp[-1].items() if k.startswith("val_")
    }
    _assert_same_training_state(_ckpt(runs["ddp"] / f"epoch_{EPOCHS}.pth"), _ckpt(runs["fsdp"] / f"epoch_{EPOCHS}.pth"))
    log = (runs["fsdp"] / "train.log").read_text()
    assert "fsdp: 2 blocks and the rest of the model sharded over 2 processes" in log
    assert "activation checkpointing: 2 blocks" in log


def test_fsdp_resumes_a_ddp_checkpoint(runs):
    """Resuming DDP's next-to-last checkpoint under FSDP (full state dicts split into shards) continues DDP's run
    (last epoch's loss, final weights and optimizer state)."""
    ddp, resumed = _metrics(runs["ddp"]), _metrics(runs["resumed"])
    assert [m["epoch"] for m in resumed] == [EPOCHS]
    for a, b in zip(ddp[EPOCHS - 1 :], resumed):
        assert abs(a["loss"] - b["loss"]) < 1e-5, (a, b)
    assert "resumed from" in (runs["resumed"] / "train.log").read_text()
    _assert_same_training_state(
        _ckpt(runs["ddp"] / f"epoch_{EPOCHS}.pth"), _ckpt(runs["resumed"] / f"epoch_{EPOCHS}.pth")
    )


def test_fsdp_checkpoint_loads_in_one_process(runs, synth_tiny, cli_inprocess):
    """The FSDP run's checkpoint is a plain one: it loads strictly into a fresh single-process model (holding the
    DDP run's final weights), and `vidlab test` on it reproduces the 2-process validation on the odd-sized set."""
    num_classes = len(read_label_map(synth_tiny / "label_map.txt"))
    model = create_model("videomae_vit_s", num_classes=num_classes, **TINY_VIT)
    load_checkpoint(model, runs["fsdp"] / f"epoch_{EPOCHS}.pth")
    ddp = _ckpt(runs["ddp"] / f"epoch_{EPOCHS}.pth")["model"]
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, ddp[k], rtol=0, atol=1e-5, msg=k)
    best = runs["fsdp"] / "best.pth"
    t = cli_inprocess("test", "--checkpoint", str(best), "--list", "val.txt", "--root", str(synth_tiny))
    assert t.returncode == 0, t.stderr
    tested = [line for line in t.stdout.splitlines() if line.startswith("RESULT ")]
    assert tested[0].rsplit(" minutes=", 1)[0] == runs["results"]["fsdp"].rsplit(" minutes=", 1)[0]


def _loss_and_grads(model, x, y, seed: int = 0):
    torch.manual_seed(seed)  # the same dropout / drop-path draws in both models
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad for n, p in model.named_parameters()}


@pytest.mark.parametrize(
    "name, kwargs, shape",
    [
        # dropout and stochastic depth: the recomputation must replay the same random draws
        ("videomae_vit_s", {**TINY_VIT, "drop_path_rate": 0.2, "attn_drop_rate": 0.1}, (2, 3, 4, 32, 32)),
        # BatchNorm: running statistics updated once per forward, not again in the recomputation
        ("tsn_r18", {}, (2, 3, 2, 32, 32)),
    ],
)
def test_activation_checkpointing_keeps_loss_grads_and_keys(name, kwargs, shape):
    torch.manual_seed(0)
    plain = create_model(name, num_classes=5, **kwargs).train()
    checkpointed = copy.deepcopy(plain)
    n = parallel.checkpoint_blocks(checkpointed)
    assert n == len(parallel.block_modules(plain)) > 0
    assert list(checkpointed.state_dict()) == list(plain.state_dict())
    assert [k for k, _ in checkpointed.named_parameters()] == [k for k, _ in plain.named_parameters()]
    x, y = torch.randn(shape), torch.tensor([1, 3])
    loss, grads = _loss_and_grads(plain, x, y)
    loss_ckpt, grads_ckpt = _loss_and_grads(checkpointed, x, y)
    torch.testing.assert_close(loss_ckpt, loss, rtol=0, atol=1e-6)
    for k, g in grads.items():
        torch.testing.assert_close(grads_ckpt[k], g, rtol=1e-5, atol=1e-6, msg=k)
    buffers = dict(plain.named_buffers())
    for k, b in checkpointed.named_buffers():
        torch.testing.assert_close(b, buffers[k], rtol=0, atol=0, msg=k)
    checkpointed.load_state_dict(plain.state_dict())  # interchangeable checkpoints
    with torch.no_grad():
        torch.testing.assert_close(checkpointed.eval()(x), plain.eval()(x))


def test_block_modules_are_the_repeated_blocks(no_init_on_meta):
    """Transformer blocks of token models, residual blocks of every CNN stage (both SlowFast pathways), none for
    a model without block lists."""
    from vidlab.models.linear_probe import LinearProbe

    def names(model):
        ids = {id(m): n for n, m in model.named_modules()}
        return [ids[id(m)] for m in parallel.block_modules(model)]

    with torch.device("meta"):
        assert names(create_model("videomae_vit_s", num_classes=5, **TINY_VIT)) == [
            "backbone.blocks.0",
            "backbone.blocks.1",
        ]
        r18 = names(create_model("tsn_r18", num_classes=5))
        assert r18 == [f"backbone.layer{i}.{j}" for i in range(1, 5) for j in range(2)]
        slowfast = names(create_model("slowfast_r50_4x16", num_classes=5))
        assert len(slowfast) == 2 * (3 + 4 + 6 + 3)
        assert {n.split(".layer")[0] for n in slowfast} == {"backbone.slow_path", "backbone.fast_path"}
    assert parallel.block_modules(LinearProbe(num_classes=5, in_features=8)) == []


def test_fsdp_in_one_process_trains_the_plain_model(caplog):
    module = TrainForward(create_model("videomae_vit_s", num_classes=5, **TINY_VIT))
    with caplog.at_level(logging.INFO, logger="vidlab"):
        wrapped = parallel.wrap(module, TrainConfig(strategy="fsdp"), DistInfo())
    assert wrapped is module and not parallel.is_sharded(wrapped)
    assert "training it unsharded" in caplog.text


def test_unknown_strategy_names_the_key():
    with pytest.raises(ConfigError, match="train.strategy"):
        load_config(None, ["train.strategy=zero3"])
    with pytest.raises(ConfigError, match="train.strategy"):
        parallel.wrap(torch.nn.Linear(2, 2), TrainConfig(strategy="zero3"), DistInfo())


def test_fsdp_refuses_channels_last_before_any_collective():
    module = TrainForward(torch.nn.Conv3d(3, 4, 3))
    with pytest.raises(ConfigError, match="train.channels_last"):
        parallel.wrap(module, TrainConfig(strategy="fsdp", channels_last=True, amp="none"), DistInfo(0, 2, 0))
