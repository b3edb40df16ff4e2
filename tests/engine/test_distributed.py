"""torch.distributed for real: torchrun launches gloo process groups on CPU."""

import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.dist
WORKER = REPO / "tests" / "engine" / "ddp_worker.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _torchrun(*args, timeout=300):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=REPO)


def test_two_processes_match_one_process_gradients(tmp_path, monkeypatch):
    """The worker under torchrun (2 processes) and, as the reference, its single-process run in this process."""
    r = _torchrun(str(WORKER), str(tmp_path / "ddp.pt"))
    assert r.returncode == 0, r.stderr
    monkeypatch.syspath_prepend(str(REPO / "tests" / "engine"))
    from ddp_worker import main as worker

    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):  # no process group: the whole global batch in one process
        monkeypatch.delenv(var, raising=False)
    worker(str(tmp_path / "single.pt"))
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    assert abs(ddp["loss"] - single["loss"]) < 1e-6
    names = [n.removeprefix("module.") for n in ddp["grads"]]
    assert names == list(single["grads"])
    for (name, g_ddp), g_one in zip(ddp["grads"].items(), single["grads"].values()):
        torch.testing.assert_close(g_ddp, g_one, rtol=1e-5, atol=1e-6, msg=name)


def test_torchrun_train_end_to_end(tiny_recipe, tmp_path, cli_inprocess):
    work = tmp_path / "run"
    r = _torchrun("-m", "vidlab", "train", str(tiny_recipe), f"work_dir={work}", "train.epochs=1")
    assert r.returncode == 0, r.stderr
    results = [line for line in r.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 1  # only rank 0 reports
    assert (work / "epoch_1.pth").is_file() and (work / "best.pth").is_file()
    assert "2 processes" in r.stderr
    # the validation of the 2-process run is that of the checkpoint it wrote (every rank evaluates with rank 0's
    # BatchNorm statistics), so testing best.pth on the val split in one process gives the same metrics
    t = cli_inprocess(
        "test", str(tiny_recipe), f"work_dir={work}", "--split", "val", "--checkpoint", str(work / "best.pth")
    )
    assert t.returncode == 0, t.stderr
    tested = [line for line in t.stdout.splitlines() if line.startswith("RESULT ")]
    assert tested[0].rsplit(" minutes=", 1)[0] == results[0].rsplit(" minutes=", 1)[0]


def test_gradient_accumulation_matches_full_batch():
    """Two micro-batches with accum_steps=2 give the gradients of one batch of twice the size."""
    sys.path.insert(0, str(REPO / "tests" / "engine"))
    from ddp_worker import TinyNet

    from vidlab.config import Config
    from vidlab.engine.distributed import DistInfo
    from vidlab.engine.train import train_step
    from vidlab.tasks import RecognitionTask

    cfg = Config()
    gen = torch.Generator().manual_seed(3)
    imgs = torch.randint(0, 256, (8, 1, 4, 8, 8, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 5, (8,), generator=gen)
    grads = []
    for accum in (1, 2):
        torch.manual_seed(0)
        model = TinyNet()
        size = 8 // accum
        losses = [
            train_step(
                model,
                {"imgs": imgs[i * size : (i + 1) * size], "label": labels[i * size : (i + 1) * size]},
                RecognitionTask(),
                DistInfo(),
                mean=cfg.data.mean,
                std=cfg.data.std,
                micro_step=i,
                accum=accum,
            )
            for i in range(accum)
        ]
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        assert len(losses) == accum
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-5, atol=1e-7, msg=name)


def test_train_step_adds_auxiliary_head_losses():
    """The auxiliary outputs of a model's ``forward_train`` (TPN) enter the training loss with their weight."""
    import torch.nn.functional as F

    from vidlab.config import Config
    from vidlab.engine.distributed import DistInfo
    from vidlab.engine.evaluate import TrainForward, to_input
    from vidlab.engine.train import train_step
    from vidlab.tasks import RecognitionTask

    class WithAux(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 5)
            self.aux = torch.nn.Linear(3, 5)

        def forward(self, x):
            return self.fc(x.mean(dim=(2, 3, 4)))

        def forward_train(self, x):
            f = x.mean(dim=(2, 3, 4))
            return self.fc(f), [(0.5, self.aux(f))]

    gen = torch.Generator().manual_seed(3)
    imgs = torch.randint(0, 256, (4, 1, 4, 8, 8, 3), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 5, (4,), generator=gen)
    torch.manual_seed(0)
    model = WithAux()
    cfg = Config()
    batch = {"imgs": imgs, "label": labels}
    loss = train_step(TrainForward(model), batch, RecognitionTask(), DistInfo(), mean=cfg.data.mean, std=cfg.data.std)
    with torch.no_grad():
        f = to_input(imgs, cfg.data.mean, cfg.data.std, torch.device("cpu")).flatten(0, 1).mean(dim=(2, 3, 4))
        expected = F.cross_entropy(model.fc(f), labels) + 0.5 * F.cross_entropy(model.aux(f), labels)
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert model.aux.weight.grad is not None and model.aux.weight.grad.abs().sum() > 0
