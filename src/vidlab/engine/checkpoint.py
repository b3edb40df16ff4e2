"""Atomic checkpoint files, safe loading (``weights_only=True``) and RNG state capture for exact resume."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from vidlab.errors import VidlabError


class CheckpointError(VidlabError, RuntimeError):
    """A checkpoint file is missing, unreadable or lacks what the caller needs."""


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(f)`` on a temporary file in ``path``'s folder, fsync, then rename it to ``path``.

    A process killed mid-write leaves the previous file (or none), never a truncated one. A failed write (a full
    disk, a file-size limit) removes the temporary file and raises an ``OSError`` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    sink = None
    try:
        with os.fdopen(fd, "wb") as f:
            sink = _Recording(f)
            write(sink)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        # torch.save reports a failed write as a RuntimeError ("unexpected pos ..."): the OSError is the cause
        cause = e if isinstance(e, OSError) else getattr(sink, "error", None)
        if cause is not None and cause.errno is not None:
            kept = "the previous file is unchanged" if path.exists() else "nothing was written"
            raise OSError(cause.errno, f"cannot write {path} ({cause.strerror}); {kept}") from e
        raise


class _Recording:
    """A file object that remembers the first ``OSError`` of a write (the writer may hide it in another error)."""

    def __init__(self, f):
        self._f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def save_checkpoint(state: dict, path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (:func:`atomic_write`): a run killed mid-write leaves the previous
    file intact."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt zip, pickled objects outside the allow-list, ...
        raise CheckpointError(f"cannot load checkpoint {path}: {e}") from e


def capture_rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(_tuples(state["python"]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))


def _tuples(x):
    # weights_only loading may return lists where tuples were saved; random.setstate wants tuples.
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def _class_count_in(converted: dict[str, torch.Tensor], model: torch.nn.Module) -> int | None:
    """The class count a converted state dict was trained with: the size, in the file, of the head outputs
    that have ``model.num_classes`` rows in the model (``None`` if the head keys are absent or disagree)."""
    own = model.state_dict()
    sizes = {
        int(converted[k].shape[0])
        for k, v in own.items()
        if k.startswith("head.") and k in converted and v.dim() >= 1 and v.shape[0] == model.num_classes
    }
    return sizes.pop() if len(sizes) == 1 else None


def _segment_count_in(converted: dict[str, torch.Tensor]) -> int | None:
    """The clip length a converted TIN / TANet / TRN state dict was built for, read off its T-sized layers."""
    for key, value in converted.items():
        if key.endswith(".interlace.offset_net.fc1.weight"):  # Linear(T, T)
            return int(value.shape[1])
        if key.endswith(".tam.G.0.weight"):  # Linear(T, alpha * T)
            return int(value.shape[1])
    scales = {k.split(".")[3] for k in converted if k.startswith("head.consensus.fc_fusion_scales.")}
    if scales:  # multi-scale TRN: one MLP per scale T, T-1, ..., 2
        return len(scales) + 1
    if "head.consensus.classifier.1.weight" in converted and "head.fc.weight" in converted:  # single-scale TRN
        return int(converted["head.consensus.classifier.1.weight"].shape[1] // converted["head.fc.weight"].shape[0])
    return None


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    model: str,
    source: str = "auto",
    num_classes: int | None = None,
    num_segments: int | None = None,
    drop_head: bool = False,
    strict: bool = True,
    clip_spec: dict | None = None,
    classes: list[str] | None = None,
    model_kwargs: dict | None = None,
    inflate: dict | None = None,
) -> dict:
    """Convert another toolbox's checkpoint into a vidlab checkpoint file for zoo model ``model``.

    The weights are renamed (:func:`vidlab.convert_state_dict`), loaded into ``create_model(model, ...)`` with
    the usual key report, and the model's state dict is written atomically to ``dst`` as
    ``{"model": state_dict, "meta": {...}}`` (loadable by ``vidlab test`` / :func:`vidlab.load_checkpoint`).

    Args:
        src: checkpoint to convert (read with ``weights_only=True``).
        dst: output file.
        model: registered vidlab model name.
        source: toolbox that wrote ``src`` (``"auto"`` detects it from the key names).
        num_classes: classes of the built model; by default the checkpoint's own class count (read off its
            classifier), so a Kinetics-400 checkpoint gives a 400-class model (a backbone-only checkpoint, such as
            SEVERE's self-supervised ones, the model's default, with a freshly initialised classifier).
        num_segments: clip length of the families that fix it at build time (TIN, TANet, TRN); by default
            read off the checkpoint's T-sized layers. Other builder arguments a PyTorchVideo, PySlowFast or TCLR
            checkpoint needs (:func:`vidlab.models.convert.builder_kwargs`) are set too and recorded in the file's
            ``meta.kwargs``.
        drop_head: keep the new model's freshly initialised head where the checkpoint's has another shape
            (fine-tuning to ``num_classes`` classes).
        strict: refuse to write when keys are missing, unexpected or mismatched.
        clip_spec: the test-time clip spec to record (:func:`vidlab.engine.builders.test_clip_spec` of a recipe);
            by default :func:`default_clip_spec` of the model (ImageNet normalization, one centre clip of the
            registered input size).
        classes: class names to record (a label map), so ``vidlab predict`` prints names.
        model_kwargs: builder arguments of a non-standard size (``embed_dim``, ``depth`` ...), recorded in
            ``meta.kwargs`` with the source's own.
        inflate: ``src`` is an image checkpoint to inflate into the model, with these options of
            :func:`~vidlab.models.convert.inflate.inflate_state_dict` (``{}``: the defaults); the returned report
            is the inflation report (``copied``, ``inflated``, ``resized``, ``initialised``, ``left_at_init``,
            ``unused``). ``source``, ``drop_head`` and ``strict`` do not apply.

    Returns:
        The :func:`vidlab.load_checkpoint` report plus ``num_classes`` and ``kwargs`` (builder arguments used).

    Raises:
        CheckpointError: unreadable file, unknown source, or (with ``strict``) keys that do not fit, listed.
    """
    if inflate is not None:
        report, source, kwargs, net = _inflate(src, model, num_classes, model_kwargs, inflate)
    else:
        report, source, kwargs, net = _convert(
            src, model, source, num_classes, num_segments, drop_head, strict, model_kwargs
        )
    if classes is not None and len(classes) != net.num_classes:
        raise CheckpointError(f"the label map names {len(classes)} classes but the model has {net.num_classes}")
    meta = {"model": model, "num_classes": net.num_classes, "kwargs": kwargs, "source": source}
    meta.update(converted_from=str(src), classes=classes, task=_task_meta(model))
    meta["data"] = clip_spec or default_clip_spec(model, net)
    save_checkpoint({"model": net.state_dict(), "meta": meta}, dst)
    return {**report, "num_classes": net.num_classes, "kwargs": kwargs}


def _inflate(src, model, num_classes, model_kwargs, options):
    """``(report, source, builder kwargs, model)`` of an image checkpoint inflated into zoo model ``model``."""
    from vidlab.models import create_model
    from vidlab.models.convert.inflate import load_inflated

    try:
        net = create_model(model, num_classes=num_classes, **(model_kwargs or {}))
        report = load_inflated(net, src, **options)
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        raise CheckpointError(str(e)) from e
    return report, f"image:{report['source']}", dict(model_kwargs or {}), net


def _convert(src, model, source, num_classes, num_segments, drop_head, strict, model_kwargs):
    """``(report, source, builder kwargs, model)`` of a foreign checkpoint loaded into zoo model ``model``."""
    from vidlab.models import create_model
    from vidlab.models._registry import meta_device
    from vidlab.models.convert import builder_kwargs, convert_for, discarded_keys, load_converted, read_state_dict

    try:
        with meta_device():  # shapes only: pick num_classes / num_segments before building for real
            probe = create_model(model, num_classes=num_classes, **(model_kwargs or {}))
        state_dict = read_state_dict(src)
        source, converted = convert_for(probe, state_dict, source)
        kwargs = {**(model_kwargs or {}), **builder_kwargs(source, model, converted)}
        if getattr(probe, "num_segments", None) is not None:  # a family that fixes T at build time
            found = num_segments or _segment_count_in(converted)
            if found and found != probe.num_segments:
                kwargs["num_segments"] = found
        if num_classes is None:
            num_classes = _class_count_in(converted, probe) or probe.num_classes
        net = create_model(model, num_classes=num_classes, **kwargs)
        report = load_converted(
            net,
            converted,
            source,
            strict=strict,
            drop_head=drop_head,
            origin=str(src),
            discarded=discarded_keys(state_dict, source),
        )
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        raise CheckpointError(str(e)) from e
    return report, source, kwargs, net


EXPORTS = ("hf", "videomae")


def export_checkpoint(src: str | Path, dst: str | Path, to: str) -> dict:
    """Write a vidlab VideoMAE pre-training checkpoint (``videomae_pretrain_vit_*``, from ``vidlab train`` or
    ``vidlab convert``) in another layout: ``hf`` (a ``VideoMAEForPreTraining`` state dict, for its
    ``load_state_dict``) or ``videomae`` (the original ``modeling_pretrain.py`` names under ``{"model": ...}``).

    Returns:
        ``{"model": name, "keys": number of tensors written}``.

    Raises:
        CheckpointError: an unknown layout, a file that is not such a checkpoint.
    """
    from vidlab.models.convert import videomae_pretrain as vp

    if to not in EXPORTS:
        raise CheckpointError(f"--to {to!r}: can export to {', '.join(EXPORTS)}")
    state = load_file(src)
    meta = state.get("meta") if isinstance(state, dict) else None
    model = meta.get("model") if isinstance(meta, dict) else None
    if not vp.is_pretrain_model(model) or not isinstance(state.get("model"), dict):
        raise CheckpointError(
            f"{src}: export takes a vidlab checkpoint of a videomae_pretrain_* model (its meta.model is {model!r})"
        )
    weights = state["model"]
    save_checkpoint(vp.to_hf(weights) if to == "hf" else {"model": vp.to_original(weights)}, dst)
    return {"model": model, "keys": len(weights)}


def _task_meta(model: str) -> dict:
    """The ``meta.task`` of a converted checkpoint: an AVA detector's sigmoid scores per box, or single-label
    recognition."""
    from vidlab.models import get_model_info

    task = get_model_info(model).task
    if task in ("detection", "pretrain"):
        return {"name": task}
    return {"name": "recognition", "multi_label": False, "average_clips": "prob"}


def default_clip_spec(name: str, model: torch.nn.Module) -> dict:
    """A test-time clip spec for a converted checkpoint without a recipe: MMAction2's ImageNet mean/std (0-255),
    short side resized to ``H * 256 / 224`` in the decoder, one centre crop of the registered input size, and one
    clip of the registered length (2D families: that many segments, one frame each) at frame interval 1. An audio
    model reads the videos' sound as MMAction2's audio test pipeline does (10 clips of 64 frames, 128 rows each)."""
    from vidlab.models import get_model_info
    from vidlab.models.base import FrameClassifier

    info = get_model_info(name)
    if info.task == "audio":  # MMAction2's audio recipes: 64-frame clips as 128 feature rows, 10 clips, no mean/std
        return {
            "format": "audio", "mean": [0.0], "std": [1.0], "input_format": "NCTHW", "num_segments": 1,
            "short_side": None, "backend": "pyav", "pipeline": [], "average_clips": "prob",
            "sampler": {"type": "SampleFrames", "clip_len": 64, "num_clips": 10, "test_mode": True},
            "audio_fixed_length": info.input_shape[2],
        }  # fmt: skip
    _, t, h, _ = info.input_shape
    frames = isinstance(model, FrameClassifier)
    sampler = {"type": "SampleFrames", "clip_len": 1 if frames else t, "frame_interval": 1, "test_mode": True}
    sampler["num_clips"] = t if frames else 1
    return {
        "mean": [123.675, 116.28, 103.53],
        "std": [58.395, 57.12, 57.375],
        "input_format": "NCHW" if frames else "NCTHW",
        "num_segments": t,
        "short_side": round(h * 256 / 224),
        "backend": "pyav",
        "sampler": sampler,
        "pipeline": [{"type": "CenterCrop", "crop_size": h}],
        "average_clips": "prob",
    }
