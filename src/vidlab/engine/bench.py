"""``vidlab bench model NAME``: inference latency and throughput of one zoo model as :func:`vidlab.inference_model`
prepares it (random weights, or a checkpoint's), on a random clip batch."""

from __future__ import annotations

import resource
import statistics
import sys
import time

import torch

from vidlab.engine.fast import example_input, inference_model


def peak_rss_mib() -> float:
    """The process's peak resident set so far (Linux reports ``ru_maxrss`` in KiB, macOS in bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def bench_model(
    name: str | None = None,
    *,
    checkpoint: str | None = None,
    shape: tuple[int, int, int, int] | None = None,
    batch: int = 1,
    precision: str = "auto",
    compile: bool = False,
    backend: str = "torch",
    memory_format: str = "auto",
    fold_bn: bool = True,
    threads: int | None = None,
    repeats: int = 5,
    warmup: int = 1,
    model_kwargs: dict | None = None,
) -> dict:
    """Time ``repeats`` forward passes (after ``warmup`` untimed ones; the first call, which compiles, is timed
    apart) of the model ``name`` (random init) or the model of ``checkpoint``.

    Returns:
        ``ms_per_clip`` (median latency / batch), ``latency_ms`` (median per batch), ``clips_per_s``,
        ``first_call_s``, ``prepare_s``, ``peak_rss_mib``, ``precision``, ``threads``, ``prepared`` (what was done),
        ``input``.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    if checkpoint is not None:
        from vidlab.engine.inference import load_model

        model = load_model(checkpoint)
    else:
        from vidlab.models import create_model

        model = create_model(name, **(model_kwargs or {})).eval()
        model.meta = {"model": name}
    x = example_input(model, shape, batch=batch)
    t0 = time.perf_counter()
    fast = inference_model(
        model, precision, compile, backend, example=x, memory_format=memory_format, fold_bn=fold_bn, copy_model=False
    )
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fast(x)
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        fast(x)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fast(x)
        times.append(time.perf_counter() - t0)
    latency = statistics.median(times)
    return {
        "model": name or (model.meta or {}).get("model"),
        "input": [batch, *x.shape[1:]],
        "ms_per_clip": 1000 * latency / batch,
        "latency_ms": 1000 * latency,
        "clips_per_s": batch / latency,
        "first_call_s": first,
        "prepare_s": prepare_s,
        "peak_rss_mib": peak_rss_mib(),
        "precision": fast.precision_name,
        "threads": torch.get_num_threads(),
        "prepared": fast.describe(),
        "repeats": repeats,
    }
