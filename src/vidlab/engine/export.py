"""`vidlab export`: a checkpoint's model as ONNX (run with onnxruntime), TorchScript or a ``torch.export``
ExportedProgram, with the checkpoint's test-time normalization and clip spec inside, checked against PyTorch eager.

Every exported artefact takes the normalized clip ``(B, C, T, H, W)`` float32 (what the model itself takes; the
caller decodes, samples, crops and normalizes with the recorded ``mean`` / ``std`` and clip spec) and returns logits
``(B, num_classes)``; the batch axis is dynamic unless asked otherwise.

ONNX comes from one of PyTorch's two exporters (docs/EXPORT.md compares them over the zoo):

- ``legacy``: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based tracer. About 1 s for a small model,
  but it traces Python-level shape arithmetic into constants, so some families come out wrong at another batch size
  (C2D) or wrong outright (TSM's temporal shift), and ``torch.autograd.Function`` layers stop it.
- ``dynamo``: ``torch.onnx.export(..., dynamo=True)`` (needs ``onnxscript``), ``torch.export`` then a translation to
  ONNX. Correct wherever it exports, 5-20x slower.
- ``auto`` (the default): ``legacy``, kept only if onnxruntime reproduces PyTorch on a second batch size, else
  ``dynamo``. Fast where the tracer is right, right everywhere else.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
import zipfile
from pathlib import Path

import torch

from vidlab.errors import InputError, MissingDependencyError, one_line

__all__ = [
    "FORMATS",
    "TOLERANCE",
    "ExportDependencyError",
    "OnnxRuntimeModel",
    "clip_shape",
    "export_checkpoint_model",
    "export_exported_program",
    "export_onnx",
    "export_torchscript",
    "max_rel_error",
    "read_metadata",
]

#: ``vidlab export --format`` values and the file suffix each gets by default
FORMATS = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}
#: the largest ``max|exported - eager| / max|eager|`` an export may show and still be written
TOLERANCE = 1e-4
#: name of the JSON metadata inside a TorchScript or ExportedProgram archive (their ``extra_files``)
META_FILE = "vidlab_meta.json"
#: the ONNX graph's input and output names
INPUT_NAME, OUTPUT_NAME = "video", "logits"
#: ONNX files stay in one protobuf up to this size; larger models keep their weights in ``<file>.data``
_PROTOBUF_LIMIT = 1_900_000_000

_TAM = (
    "TAM's temporal convolution runs an input-computed kernel with groups = batch x channels, and ONNX Conv (like a "
    "traced conv2d) takes a constant group count"
)
#: (family, format) pairs whose exported graph holds for one batch size only, and why (export them with
#: ``dynamic_batch=False``, ``vidlab export --static-batch``)
STATIC_BATCH_ONLY = {
    ("tanet", "onnx"): _TAM,
    ("tanet", "torchscript"): _TAM,
    ("videomamba", "onnx"): (
        "the selective scan sizes its channel blocks from the batch size (a Python int, `step` in "
        "models/layers/selective_scan.py), so a trace holds for the traced batch size only"
    ),
}
#: (family, format) pairs that cannot be exported at all, and why
CANNOT_EXPORT = {
    ("tsm", "torchscript"): (
        "its temporal shift is a torch.autograd.Function (a hand-written backward), which torch.jit.trace cannot "
        "record (RuntimeError: unordered_map::at); --format onnx or exported-program export it"
    ),
    ("videomamba", "torchscript"): (
        "its selective scan is a torch.autograd.Function (a hand-written backward), which torch.jit.trace cannot "
        "record (Could not export Python function call '_Scan'); --format onnx --static-batch exports it"
    ),
    ("videomamba", "exported-program"): (
        "torch.export traces autograd through the selective scan, whose in-place out= products it refuses "
        "(RuntimeError: mul(): functions with out=... arguments don't support automatic differentiation); "
        "--format onnx --static-batch exports it"
    ),
}
#: what a failed torch.jit.trace most likely met
_TRACE_HINT = (
    " (torch.jit.trace cannot record torch.autograd.Function layers, such as the temporal shift of TSM-based models; "
    "--format onnx or exported-program export them)"
)
#: model tasks whose forward is not ``clip -> logits``
_NOT_EXPORTABLE = {
    "detection": "an action detector takes person boxes (RoIs) with the clip",
    "pretrain": "a masked-autoencoder pre-training model returns its loss, not logits",
    "encoder": "a CLIP tower has no classifier",
    "counting": "a repetition counter returns box and count predictions, not logits",
    "audio": "an audio model takes spectrograms, not video clips",
}


class ExportDependencyError(MissingDependencyError, InputError):
    """An export format whose packages (the ``export`` extra) are not installed."""


def _require(*modules: str) -> None:
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise ExportDependencyError(
                f"ONNX export needs {', '.join(modules)}, and {name} is not installed: pip install 'vidlab[export]'"
            ) from None


def max_rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """``max|out - ref| / max|ref|``: the largest deviation relative to the logits' scale (an element-wise ratio
    would blow up on logits near zero)."""
    out, ref = out.detach().double(), ref.detach().double()
    if out.shape != ref.shape:
        return float("inf")
    return float((out - ref).abs().max() / ref.abs().max().clamp_min(1e-12))


def _check_batches(run, model: torch.nn.Module, example: torch.Tensor, batches) -> float:
    """The largest :func:`max_rel_error` of ``run(x)`` against ``model(x)`` on random clips of the example's shape
    at each batch size (a fixed seed; torch's global random state is left alone)."""
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for b in batches:
        x = torch.randn((b, *example.shape[1:]), generator=gen, dtype=example.dtype)
        with torch.no_grad():
            ref = model(x)
        worst = max(worst, max_rel_error(run(x), ref))
    return worst


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' deprecation warnings and INFO/WARNING logging (torchvision ops they skip, ...)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _batch2(example: torch.Tensor, dynamic_batch: bool) -> torch.Tensor:
    """The example with a batch of at least 2 where the batch is dynamic: ``torch.export`` specializes a size-1 dim."""
    if dynamic_batch and example.shape[0] < 2:
        return example.expand(2, *example.shape[1:]).contiguous()
    return example


def _param_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _onnx_legacy(model, example, path: Path, dynamic_batch: bool, opset: int | None) -> None:
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            opset_version=opset,
        )


def _onnx_dynamo(model, example, path: Path, dynamic_batch: bool, opset: int | None) -> None:
    _require("onnxscript")
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (_batch2(example, dynamic_batch),),
            str(path),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=shapes,
            opset_version=opset,
            external_data=_param_bytes(model) > _PROTOBUF_LIMIT,
            verbose=False,
        )


def _remove(path: Path) -> None:
    """Delete an export (and the ``.data`` file of an ONNX model over 2 GB)."""
    for p in (path, path.with_name(path.name + ".data")):
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def _muted_fds():
    """File descriptors 1 and 2 on /dev/null while the block runs: the legacy exporter prints the whole TorchScript
    graph (hundreds of kB) from C++ on some failures, which ``auto`` expects and handles. Process-wide, so another
    thread's output in that second is lost too."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, null = [os.dup(1), os.dup(2)], os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def _legacy_reproduces(model, example, path: Path, dynamic_batch: bool, opset: int | None) -> bool:
    """Write the legacy exporter's ONNX file and tell whether onnxruntime reproduces ``model`` with it (at the
    example's batch size and, with a dynamic batch, at 2): the tracer fails on ``autograd.Function`` layers and can
    freeze shape arithmetic into constants."""
    try:
        with _muted_fds():
            _onnx_legacy(model, example, path, dynamic_batch, opset)
        batches = sorted({example.shape[0], 2}) if dynamic_batch else [example.shape[0]]
        return _check_batches(OnnxRuntimeModel(path, spinning=False), model, example, batches) <= TOLERANCE
    except Exception:  # whatever the tracer raises, the dynamo exporter is tried next
        return False


def _write_onnx_metadata(path: Path, metadata: dict, dynamic_batch: bool) -> None:
    """Set ``metadata_props`` of the ONNX file (weights kept where the exporter put them), after checking that a
    dynamic batch was kept: the dynamo exporter falls back to a fixed-shape trace where ``torch.export`` refuses it."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if dynamic_batch and not batch_dim.dim_param:
        _remove(path)
        raise InputError(
            f"the exporter fixed the batch size of {path.name} to {batch_dim.dim_value}: the model's graph depends on "
            "the batch size; export it with dynamic_batch=False (vidlab export --static-batch)"
        )
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), value if isinstance(value, str) else json.dumps(value)
    onnx.save(proto, str(path))


def export_onnx(
    model: torch.nn.Module,
    example: torch.Tensor,
    path: str | Path,
    *,
    dynamic_batch: bool = True,
    metadata: dict | None = None,
    opset: int | None = None,
    exporter: str = "auto",
) -> Path:
    """Write ``model`` (normalized clip ``(B, C, T, H, W)`` -> logits) as an ONNX file.

    Args:
        model: the classifier, in eval mode.
        example: an input of the shape to export (its batch size is the only one kept when not ``dynamic_batch``).
        path: the ``.onnx`` file to write (a model over 2 GB keeps its weights in ``<path>.data``).
        dynamic_batch: a symbolic batch axis (``batch``) on the input ``video`` and the output ``logits``.
        metadata: written into the model's ``metadata_props`` (values that are not strings as JSON); the key
            ``exporter`` is added.
        opset: ONNX opset (default: the exporter's).
        exporter: ``auto``, ``legacy`` or ``dynamo`` (see the module docstring).

    Returns:
        ``path``.

    Raises:
        ExportDependencyError: onnx / onnxruntime (or onnxscript, for ``dynamo``) are not installed.
        InputError: an unknown ``exporter``, or a dynamic batch the exporter could not keep (nothing is left
            written). With ``auto``, a legacy export that onnxruntime does not reproduce is replaced silently; the
            ``dynamo`` exporter's errors propagate.
    """
    if exporter not in ("auto", "legacy", "dynamo"):
        raise InputError(f"exporter must be auto, legacy or dynamo, got {exporter!r}")
    _require("onnx", "onnxruntime")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    used = exporter
    if exporter == "auto":
        used = "legacy" if _legacy_reproduces(model, example, path, dynamic_batch, opset) else "dynamo"
    elif exporter == "legacy":
        _onnx_legacy(model, example, path, dynamic_batch, opset)
    if used == "dynamo":
        _remove(path)
        _onnx_dynamo(model, example, path, dynamic_batch, opset)
    _write_onnx_metadata(path, {**(metadata or {}), "exporter": used}, dynamic_batch)
    return path


class OnnxRuntimeModel:
    """An exported ONNX model on onnxruntime's CPU provider, called like the PyTorch model.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: ``torch.get_num_threads()``).
        spinning: let idle intra-op threads spin (onnxruntime's default: lower latency on cores of its own).

    Attributes:
        metadata: the file's ``metadata_props`` as a dict of strings.
    """

    def __init__(self, path: str | Path, threads: int | None = None, *, spinning: bool = True) -> None:
        _require("onnxruntime")
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        if not spinning:  # idle threads sleep: no CPU burnt between the few calls of a check on a shared machine
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` float32 -> logits ``(B, num_classes)``."""
        feed = x.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(self.session.run(None, {self.input_name: feed})[0])


def _extra(metadata: dict | None) -> dict[str, str]:
    return {META_FILE: json.dumps(metadata or {})}


def export_torchscript(model, example, path: str | Path, *, metadata: dict | None = None) -> Path:
    """Write ``torch.jit.trace(model, example)`` to ``path``; ``metadata`` goes in as the archive's extra file
    ``vidlab_meta.json`` (``torch.jit.load(path, _extra_files={"vidlab_meta.json": ""})`` reads it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model.eval(), (example,), check_trace=False)
    torch.jit.save(traced, str(path), _extra_files=_extra(metadata))
    return path


def export_exported_program(
    model, example, path: str | Path, *, dynamic_batch: bool = True, metadata: dict | None = None
) -> Path:
    """Write ``torch.export.export(model, ...)`` to ``path`` (a ``.pt2`` archive) with ``torch.export.save``;
    ``metadata`` goes in as its extra file ``vidlab_meta.json`` (``torch.export.load(path, extra_files=...)``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shapes = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    with _quiet(), torch.no_grad():
        program = torch.export.export(model.eval(), (_batch2(example, dynamic_batch),), dynamic_shapes=shapes)
    torch.export.save(program, str(path), extra_files=_extra(metadata))
    return path


def read_metadata(path: str | Path, fmt: str | None = None) -> dict:
    """The vidlab metadata of an exported file (``fmt`` by default from the suffix: ``.onnx``, ``.pt``, ``.pt2``),
    JSON values decoded."""
    path = Path(path)
    fmt = fmt or {v: k for k, v in FORMATS.items()}.get(path.suffix)
    if fmt == "onnx":
        _require("onnx")
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        return {k: _json_or_str(v) for k, v in props.items()}
    if fmt not in ("torchscript", "exported-program"):
        raise InputError(f"{path}: cannot tell the export format from the suffix; give one of {', '.join(FORMATS)}")
    # both archives are zip files holding their extra files at <root>/extra/<name>: read the one entry instead of
    # deserializing the program (seconds for an ExportedProgram)
    with zipfile.ZipFile(path) as archive:
        entries = [n for n in archive.namelist() if n.endswith(f"/extra/{META_FILE}")]
        text = archive.read(entries[0]).decode() if entries else "{}"
    return {k: _json_or_str(v) for k, v in json.loads(text).items()}


def _json_or_str(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value


def clip_shape(spec: dict, fallback: tuple[int, int, int, int] | None = None) -> tuple[int, int, int, int]:
    """``(C, T, H, W)`` of one test view as a checkpoint's clip spec (``meta["data"]``) makes it: the test pipeline run
    on blank frames of 4:3 video decoded at the spec's short side (``fallback``'s H, or 256, without one)."""
    from vidlab.data.flow import stack_flow
    from vidlab.data.transforms import build_pipeline

    sampler = spec.get("sampler") or {}
    clip_len = int(sampler.get("clip_len", 1))
    fmt = spec.get("input_format", "NCTHW")
    flow = spec.get("modality", "RGB") == "Flow"
    per_view = clip_len if fmt == "NCTHW" else int(spec.get("num_segments", 8))
    frames = per_view * clip_len if fmt == "NCHW_Flow" else per_view
    short = spec.get("short_side") or (fallback[2] if fallback else 256)
    imgs = torch.zeros(frames, short, round(short * 4 / 3), 2 if flow else 3, dtype=torch.uint8)
    results = {"imgs": imgs, "num_clips": max(1, frames // clip_len), "clip_len": clip_len}
    results.update(modality="Flow" if flow else "RGB", rng=None)
    out = build_pipeline(spec.get("pipeline") or [])(results)["imgs"]
    if fmt == "NCHW_Flow":
        out = stack_flow(out, clip_len)
    return int(out.shape[-1]), per_view, int(out.shape[1]), int(out.shape[2])


def _family(name: str) -> str:
    """A registered model's family: the module that defines it (``i3d``, ``tsm``, ``videomamba`` ...)."""
    from vidlab.models import get_model_info

    return get_model_info(name).module.rsplit(".", 1)[-1]


def _metadata(model, name: str, meta: dict, shape, batch: int, dynamic_batch: bool) -> dict:
    import vidlab

    spec = meta.get("data") or {}
    return {
        "vidlab_version": vidlab.__version__,
        "model": name,
        "family": _family(name),
        "num_classes": str(int(getattr(model, "num_classes", meta.get("num_classes", 0)))),
        "classes": json.dumps(meta.get("classes")),
        "mean": json.dumps(list(spec.get("mean", []))),
        "std": json.dumps(list(spec.get("std", []))),
        "input_layout": "BCTHW",
        "input_shape": json.dumps(["batch" if dynamic_batch else batch, *shape]),
        "dynamic_batch": json.dumps(dynamic_batch),
        "clip_spec": json.dumps(spec),
        "task": json.dumps(meta.get("task")),
        "output": "logits",
    }


def _check_exportable(name: str, fmt: str, dynamic_batch: bool) -> None:
    """Refuse, naming the family and why, a model that ``fmt`` cannot hold (before it is loaded)."""
    from vidlab.models import get_model_info

    task, family = get_model_info(name).task, _family(name)
    if task in _NOT_EXPORTABLE:
        raise InputError(f"{name} ({family} family) cannot be exported: {_NOT_EXPORTABLE[task]}")
    if (family, fmt) in CANNOT_EXPORT:
        raise InputError(f"{name} ({family} family) cannot be exported to {fmt}: {CANNOT_EXPORT[family, fmt]}")
    why = STATIC_BATCH_ONLY.get((family, fmt))
    if dynamic_batch and why:
        raise InputError(
            f"{name} ({family} family) cannot be exported to {fmt} with a dynamic batch axis: {why}; export a fixed "
            "batch with --static-batch (the batch size of --batch)"
        )


def _write_and_load(fmt, model, example, out: Path, name, family, metadata, dynamic_batch, opset, exporter):
    """Write ``model`` in ``fmt`` and load the file back as a callable; an exporter's own error becomes an
    :class:`InputError` naming the model's family (the partial file removed)."""
    try:
        if fmt == "onnx":
            export_onnx(
                model, example, out, dynamic_batch=dynamic_batch, metadata=metadata, opset=opset, exporter=exporter
            )
            return OnnxRuntimeModel(out, spinning=False)
        if fmt == "torchscript":
            return torch.jit.load(str(export_torchscript(model, example, out, metadata=metadata)))
        export_exported_program(model, example, out, dynamic_batch=dynamic_batch, metadata=metadata)
        return torch.export.load(str(out)).module()
    except (InputError, MissingDependencyError):
        raise
    except Exception as e:  # the exporter's own errors: name the family, keep the first line
        _remove(out)
        first = one_line(e).split("; ")[0][:500]
        hint = _TRACE_HINT if fmt == "torchscript" else ""
        raise InputError(
            f"{name} ({family} family) cannot be exported to {fmt}: {type(e).__name__}: {first}{hint}"
        ) from e


def export_checkpoint_model(
    ckpt: str | Path,
    fmt: str,
    out: str | Path,
    *,
    batch: int = 1,
    opset: int | None = None,
    dynamic_batch: bool = True,
    exporter: str = "auto",
) -> dict:
    """Export the model a self-describing checkpoint describes, then verify the file against PyTorch eager.

    The example input has the checkpoint's test clip shape (:func:`clip_shape`) and ``batch`` clips. The written
    artefact (onnxruntime for ``onnx``, ``torch.jit.load`` for ``torchscript``, ``torch.export.load`` for
    ``exported-program``) is run on random clips at batch ``batch`` and 2 (``batch`` alone without a dynamic batch)
    and compared with the eager model; a file over :data:`TOLERANCE` is deleted and reported.

    Returns:
        ``path``, ``format``, ``model``, ``family``, ``exporter`` (ONNX), ``dynamic_batch``, ``input_shape``
        (``(C, T, H, W)``), ``batches`` checked, ``max_rel_error``, ``seconds`` (export), ``metadata``.

    Raises:
        InputError: an unknown format, a model that cannot be exported (naming its family and why), an export that
            fails or does not reproduce the model.
        ExportDependencyError: ``onnx`` without the ``export`` extra.
        CheckpointError: a checkpoint that does not describe its model.
    """
    from vidlab.engine.inference import checkpoint_meta_of, load_model
    from vidlab.models import get_model_info

    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if batch < 1:
        raise InputError(f"--batch must be >= 1, got {batch}")
    if fmt == "onnx":
        _require("onnx", "onnxruntime")
    meta = checkpoint_meta_of(ckpt)
    name = meta.get("model")
    if name:  # without it load_model says what the checkpoint lacks
        _check_exportable(name, fmt, dynamic_batch)
    model = load_model(ckpt)
    family = _family(name)
    shape = clip_shape(meta.get("data") or {}, get_model_info(name).input_shape)
    example = torch.randn((batch, *shape), generator=torch.Generator().manual_seed(0))
    metadata = _metadata(model, name, meta, shape, batch, dynamic_batch)
    out = Path(out)
    t0 = time.time()
    runner = _write_and_load(fmt, model, example, out, name, family, metadata, dynamic_batch, opset, exporter)
    seconds = time.time() - t0
    batches = sorted({batch, 2}) if dynamic_batch else [batch]
    try:
        error, failure = _check_batches(runner, model, example, batches), ""
    except Exception as e:  # a trace that holds for its own batch size only may fail at another
        error, failure = float("inf"), f": running it failed ({type(e).__name__}: {one_line(e).split('; ')[0][:300]})"
    if not error <= TOLERANCE:
        _remove(out)
        raise InputError(
            f"{name} ({family} family): the {fmt} export does not reproduce the model at batch "
            f"{', '.join(map(str, batches))} (max relative error {error:.3g} > {TOLERANCE:g}){failure}; nothing was "
            "written" + ("; try --static-batch" if dynamic_batch else "")
        )
    used = runner.metadata.get("exporter") if fmt == "onnx" else None
    return {
        "path": str(out),
        "format": fmt,
        "model": name,
        "family": family,
        "exporter": used,
        "dynamic_batch": dynamic_batch,
        "input_shape": shape,
        "batches": batches,
        "max_rel_error": error,
        "seconds": seconds,
        "metadata": metadata,
    }
