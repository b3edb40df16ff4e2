"""Speed of training and testing AVA detectors, in keyframes per second (model compute only: inputs are random
clips already in memory, so decoding is left out; the data pipeline is measured by ``benchmarks/pipeline.py``).

For each case a training step is forward + loss + backward + AdamW step on a batch of keyframes with
``boxes`` person boxes each; a test step is a no-grad forward of a test batch (``--test-batch`` keyframes, as
``data.val_batch_size``; MMAction2 tests one keyframe per batch). Median of ``--repeats`` timed steps after one
warm-up step, fp32 unless ``--amp bf16``.

Usage:
    python benchmarks/detection_speed.py [--cases demo,slowonly_r50_4x16_ava] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from vidlab.engine.precision import autocast_context
from vidlab.models import create_model
from vidlab.tasks.detection import detection_loss

# name -> (model, builder kwargs, clip (T, H, W), train batch, boxes per keyframe, classes)
_DEMO = {
    "depth": 18,
    "base_channels": 16,
    "inflate": 1,
    "conv1_kernel": (3, 7, 7),
}  # configs/detection/slowonly_r18_synth_det.yaml
CASES = {
    "demo": ("slowonly_r50_4x16_ava", {"backbone_kwargs": _DEMO, "output_size": 8}, (8, 96, 128), 16, 3, 9),
    "slowonly_r50_4x16_ava": ("slowonly_r50_4x16_ava", {}, (4, 256, 341), 4, 3, 80),
    "slowfast_r50_4x16_ava": ("slowfast_r50_4x16_ava", {}, (32, 256, 341), 2, 3, 80),
}  # fmt: skip


def _boxes(batch: int, per: int, h: int, w: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(batch * per, 2, generator=gen) * torch.tensor([w * 0.6, h * 0.5])
    wh = torch.rand(batch * per, 2, generator=gen) * torch.tensor([w * 0.3, h * 0.4]) + 16
    idx = torch.arange(batch).repeat_interleave(per).float()[:, None]
    return torch.cat([idx, xy, xy + wh], dim=1)


def _median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(case: str, repeats: int, test_batch: int, amp: str) -> dict:
    name, kwargs, (t, h, w), batch, per, classes = CASES[case]
    torch.manual_seed(0)
    model = create_model(name, num_classes=classes, **kwargs)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, t, h, w)
    rois = _boxes(batch, per, h, w)
    targets = (torch.rand(len(rois), classes) < 0.1).float()

    def train_step():
        model.train()
        with autocast_context(amp, torch.device("cpu")):
            logits = model(x, rois)
        detection_loss(logits.float(), targets, labelled_only=False).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    xt, rt = torch.randn(test_batch, 3, t, h, w), _boxes(test_batch, per, h, w)

    @torch.no_grad()
    def test_step():
        model.eval()
        with autocast_context(amp, torch.device("cpu")):
            model(xt, rt)

    train_s, test_s = _median_time(train_step, repeats), _median_time(test_step, repeats)
    return {"case": case, "clip": f"{t}x{h}x{w}", "train_batch": batch, "test_batch": test_batch,
            "train_kf_s": batch / train_s, "test_kf_s": test_batch / test_s}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="demo,slowonly_r50_4x16_ava")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--test-batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--amp", default="none", choices=["none", "bf16"])
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"precision {'fp32' if args.amp == 'none' else args.amp}")  # fmt: skip
    print("| case | clip (T x H x W) | train batch | train keyframes/s | test batch | test keyframes/s |")
    print("|---|---|---|---|---|---|")
    for case in args.cases.split(","):
        r = run(case, args.repeats, args.test_batch, args.amp)
        print(f"| {r['case']} | {r['clip']} | {r['train_batch']} | {r['train_kf_s']:.2f} | {r['test_batch']} | "
              f"{r['test_kf_s']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
