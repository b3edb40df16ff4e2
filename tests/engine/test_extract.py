"""`vidlab extract`: per-video features of a self-describing checkpoint, resumable after a kill, and a linear probe
trained on them (``data.format: features``)."""

import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from tests.conftest import REPO


def _random_checkpoint(recipe, path):
    """A self-describing checkpoint of the recipe's model at its random init (the probe's baseline)."""
    from vidlab.config import load_config
    from vidlab.engine.builders import build_model, build_task, checkpoint_meta
    from vidlab.engine.checkpoint import save_checkpoint

    cfg = load_config(recipe)
    torch.manual_seed(0)
    model = build_model(cfg)
    save_checkpoint({"model": model.state_dict(), "meta": checkpoint_meta(cfg, build_task(cfg), model)}, path)
    return cfg


def test_extract_resumes_after_kill_and_features_train_a_probe(tiny_recipe, synth_tiny, tmp_path, cli_inprocess):
    ckpt = tmp_path / "random.pth"
    _random_checkpoint(tiny_recipe, ckpt)
    out = tmp_path / "feats"
    videos = [line.split()[0] for line in (synth_tiny / "train.txt").read_text().splitlines() if line.strip()]
    args = ["extract", "--checkpoint", str(ckpt), "--list", str(synth_tiny / "train.txt"), "--root", str(synth_tiny)]
    args += ["--out", str(out), "--batch-size", "1", "--num-workers", "0"]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vidlab", *args], cwd=REPO, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.rglob("*.npy"))) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    assert 3 <= len(first) < len(videos), "the run finished before it could be killed"
    assert not list(out.rglob("*.tmp")) or all(p.name.startswith(".") for p in out.rglob("*.tmp"))
    assert not (out / "index.csv").exists()

    r = cli_inprocess(*args)  # the same command, resumed (in-process: its command line ran above)
    assert r.returncode == 0, r.stderr
    assert f"{len(first)} already done, {len(videos) - len(first)} to go" in r.stderr
    for p, mtime in first.items():  # finished videos were not recomputed
        assert p.stat().st_mtime_ns == mtime
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert [row["video"] for row in rows] == videos
    feats = np.load(out / rows[0]["file"])
    assert feats.shape == (1, 512) and rows[0]["shape"] == "1x512"  # one test view, ResNet-18 channels

    # the stored features are the model's pooled feature map of the test view
    import vidlab
    from vidlab.engine.builders import build_dataset
    from vidlab.engine.evaluate import to_input
    from vidlab.engine.inference import resolve_config

    model = vidlab.load_model(ckpt)
    cfg = resolve_config(ckpt, None, [f"data.root={synth_tiny}", "data.test_list=train.txt"])
    item = build_dataset(cfg, "test")[0]
    with torch.no_grad():
        x = to_input(item["imgs"][None], cfg.data.mean, cfg.data.std, torch.device("cpu"))[0]
        expected = model.forward_features(x).mean(dim=(2, 3, 4)).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)

    # a linear probe trains on the features (the val split's features extracted too); both in-process (training's
    # command line runs in tests/engine/test_train.py)
    r = cli_inprocess(*[a if a != str(synth_tiny / "train.txt") else str(synth_tiny / "val.txt") for a in args])
    assert r.returncode == 0, r.stderr
    work = tmp_path / "probe"
    probe = [
        "train",
        str(tiny_recipe),
        f"work_dir={work}",
        "data.format=features",
        f"data.features_dir={out}",
        "model.name=linear_probe",
        "model.kwargs={in_features: 512}",
        "optim.name=adamw",
        "optim.lr=0.01",
        "train.max_iters_per_epoch=null",
    ]
    r = cli_inprocess(*probe)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("RESULT top1=")
    meta = torch.load(work / "best.pth", weights_only=True)["meta"]
    assert meta["model"] == "linear_probe" and meta["kwargs"] == {"in_features": 512}
