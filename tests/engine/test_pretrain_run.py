"""Self-supervised pre-training through the real engine and CLI: ``task: pretrain`` with a tiny VideoMAE on real
SynthActions videos, then what uses its checkpoint (fine-tuning start, export / import, viz-mae)."""

import re

import pytest
import torch

from vidlab.config import load_config
from vidlab.engine.builders import build_dataset, build_model, subsample

PRETRAIN = """
task: pretrain
data:
  root: {root}
  label_map: label_map.txt
  short_side: 40
  input_format: NCTHW
  train_sampler: {{type: SampleFrames, clip_len: 4, frame_interval: 2, num_clips: 1}}
  val_sampler: {{type: SampleFrames, clip_len: 4, frame_interval: 2, num_clips: 1, test_mode: true}}
  train_pipeline:
    - {{type: MultiScaleCrop, input_size: 32, scales: [1, 0.875]}}
    - {{type: Resize, scale: [32, 32], keep_ratio: false}}
  val_pipeline:
    - {{type: Resize, scale: [32, 32], keep_ratio: false}}
  batch_size: 4
  num_workers: 0
model:
  name: videomae_pretrain_vit_s
  kwargs: {{img_size: 32, patch_size: 8, num_frames: 4, embed_dim: 32, depth: 2, num_heads: 2,
            decoder_dim: 16, decoder_depth: 1, decoder_num_heads: 2, mask_ratio: 0.75}}
optim: {{name: adamw, lr: 0.001, betas: [0.9, 0.95], weight_decay: 0.05, warmup_epochs: 0.5}}
train: {{epochs: 2, max_iters_per_epoch: 2, seed: 0}}
"""
FINETUNE_KWARGS = "{img_size: 32, patch_size: 8, num_frames: 4, embed_dim: 32, depth: 2, num_heads: 2}"


@pytest.fixture(scope="module")
def pretrained(synth_tiny, tmp_path_factory):
    """``(recipe, work_dir, captured stdout)`` of one pre-training run."""
    from vidlab.cli import main

    tmp = tmp_path_factory.mktemp("pretrain")
    recipe = tmp / "pretrain.yaml"
    recipe.write_text(PRETRAIN.format(root=synth_tiny))
    work = tmp / "run"
    torch.set_num_threads(1)
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(["train", str(recipe), f"work_dir={work}"])
    return recipe, work, buf.getvalue()


def test_pretraining_runs_and_selects_the_lowest_validation_loss(pretrained):
    _, work, out = pretrained
    m = re.search(r"RESULT loss=([0-9.]+)", out)
    assert m and 0.0 < float(m.group(1)) < 10.0
    state = torch.load(work / "best.pth", weights_only=True)
    assert state["meta"]["task"] == {"name": "pretrain"}
    assert state["meta"]["kwargs"]["mean"] == pytest.approx([123.675 / 255, 116.28 / 255, 103.53 / 255])
    assert state["best"]["metric"] == "loss"
    losses = [h["val_loss"] for h in state["history"] if "val_loss" in h]
    assert state["best"]["value"] == min(losses)


def test_validation_masks_are_the_same_every_time(pretrained):
    from vidlab.data.loader import build_loader
    from vidlab.engine.builders import build_task
    from vidlab.engine.distributed import init_distributed
    from vidlab.engine.evaluate import evaluate_split
    from vidlab.engine.inference import build_and_load

    recipe, work, _ = pretrained
    cfg = load_config(recipe)
    model = build_and_load(cfg, work / "best.pth", torch.device("cpu"))
    loader = build_loader(build_dataset(cfg, "val"), 4, train=False)
    info = init_distributed("cpu")
    task = build_task(cfg)
    runs = [evaluate_split(model, loader, info, task, mean=cfg.data.mean, std=cfg.data.std)[0] for _ in range(2)]
    assert runs[0]["loss"] == runs[1]["loss"]


def test_the_encoder_starts_a_fine_tuning_run(pretrained, synth_tiny, tmp_path):
    from vidlab.models.convert import load_checkpoint

    _, work, _ = pretrained
    cfg = load_config(
        None,
        [f"data.root={synth_tiny}", "model.name=videomae_vit_s", f"model.kwargs={FINETUNE_KWARGS}"],
    )
    model = build_model(cfg, work / "best.pth")  # as training builds it: the decoder's sizes are not the classifier's
    report = load_checkpoint(model, work / "best.pth", strict=False, drop_head=True)
    state = torch.load(work / "best.pth", weights_only=True)["model"]
    assert report["source"] == "videomae"
    assert len(report["loaded"]) == sum(k.startswith("encoder.") and k != "encoder.norm.weight" for k in state) - 1
    assert sorted(report["missing"]) == ["backbone.fc_norm.bias", "backbone.fc_norm.weight", "head.fc.bias",
                                         "head.fc.weight"]  # fmt: skip
    assert all(k.startswith(("backbone.decoder.", "backbone.norm.")) or k in (
        "backbone.mask_token", "backbone.encoder_to_decoder.weight") for k in report["unexpected"])  # fmt: skip
    torch.testing.assert_close(model.backbone.blocks[1].attn.qkv.weight, state["encoder.blocks.1.attn.qkv.weight"])


def test_export_and_import_round_trip_through_both_layouts(pretrained, cli_inprocess, tmp_path):
    from vidlab.engine.inference import load_model

    _, work, _ = pretrained
    own = torch.load(work / "best.pth", weights_only=True)["model"]
    for layout in ("hf", "videomae"):
        exported, back = tmp_path / f"{layout}.pth", tmp_path / f"{layout}_back.pth"
        r = cli_inprocess("convert", str(work / "best.pth"), str(exported), "--to", layout)
        assert r.returncode == 0, r.stderr
        foreign = torch.load(exported, weights_only=True)
        if layout == "hf":
            assert "videomae.encoder.layer.0.attention.attention.query.weight" in foreign
        else:
            assert set(foreign["model"]) == set(own)
        r = cli_inprocess(
            "convert", str(exported), str(back), "--from", layout, "--model", "videomae_pretrain_vit_s", "--kwargs",
            "{img_size: 32, patch_size: 8, num_frames: 4, embed_dim: 32, depth: 2, num_heads: 2, decoder_dim: 16, "
            "decoder_depth: 1, decoder_num_heads: 2}",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        state = torch.load(back, weights_only=True)
        expected_eps = {"norm_eps": 1e-12, "decoder_norm_eps": 1e-5} if layout == "hf" else {}
        assert {k: state["meta"]["kwargs"][k] for k in expected_eps} == expected_eps
        assert all(torch.equal(state["model"][k], v) for k, v in own.items())
        assert load_model(back).encoder.norm.eps == expected_eps.get("norm_eps", 1e-6)
    r = cli_inprocess("convert", str(tmp_path / "hf.pth"), str(tmp_path / "x.pth"), "--to", "hf")
    assert r.returncode != 0 and "videomae_pretrain" in r.stderr


def test_viz_mae_draws_the_three_rows(pretrained, synth_tiny, cli_inprocess, tmp_path):
    _, work, _ = pretrained
    video = next((synth_tiny / "videos").rglob("*.mp4"))
    out = tmp_path / "grid.png"
    r = cli_inprocess("viz-mae", str(video), "--checkpoint", str(work / "best.pth"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 5000 and out.read_bytes()[:4] == b"\x89PNG"


def test_train_fraction_keeps_a_stratified_share(synth_tiny):
    cfg = load_config(None, [f"data.root={synth_tiny}", "data.train_fraction=0.5"])
    full = build_dataset(load_config(None, [f"data.root={synth_tiny}"]), "train").items
    half = build_dataset(cfg, "train").items

    def per_class(items):
        counts = {}
        for it in items:
            counts[repr(it.label)] = counts.get(repr(it.label), 0) + 1
        return counts

    full_n, half_n = per_class(full), per_class(half)
    assert set(full_n) == set(half_n) and all(half_n[c] == max(1, round(0.5 * n)) for c, n in full_n.items())
    paths = [it.path for it in half]
    assert paths == [it.path for it in full if it.path in set(paths)]  # list order kept
    draw = lambda seed: [it.path for it in subsample(full, 0.5, seed=seed)]  # noqa: E731
    assert draw(0) == draw(0) != draw(1)
    with pytest.raises(Exception, match="train_fraction"):
        load_config(None, ["data.train_fraction=0"])
