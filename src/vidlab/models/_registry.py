"""One flat registry: model name -> builder function.

A builder is a small keyword-only function decorated with :func:`register_model`::

    @register_model(input_shape=(3, 8, 224, 224))
    def tsn_r50(*, num_classes: int = 400, **kwargs) -> TSN:
        return TSN(depth=50, num_classes=num_classes, **kwargs)

``create_model("tsn_r50", num_classes=101)`` then builds it. The registry holds no weights and does no I/O.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from vidlab.errors import ArgumentTypeError, InputError

__all__ = [
    "ModelInfo",
    "UnknownModelError",
    "count_params",
    "meta_device",
    "create_model",
    "get_model_info",
    "list_models",
    "register_model",
    "register_variant",
]


class UnknownModelError(InputError):
    """Raised by :func:`create_model` / :func:`get_model_info` for a name that is not registered."""


class ModelArgumentError(ArgumentTypeError):
    """Raised by :func:`create_model` when the builder rejects an argument (``model.kwargs`` of a config)."""


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model name.

    Attributes:
        name: registered name, ``family_variant``.
        builder: the decorated function; call it with keyword arguments only.
        input_shape: default input of one clip, ``(C, T, H, W)`` (the batch dimension is not included).
        module: the module that defines the builder (``vidlab.models.tsn`` ...).
        task: ``recognition`` (a video classifier), ``detection`` (an AVA action detector taking boxes too),
            ``pretrain`` (a self-supervised model returning its loss: VideoMAE's autoencoder), ``encoder`` (a
            feature tower without a video classifier: CLIP), ``audio`` (a spectrogram classifier, MMAction2's audio
            recognizers; its ``input_shape`` is ``(1, 1, T, F)``: one single-channel "frame" of T rows by F bins) or
            ``counting`` (vidlab's own repetition counters: SimCount).
    """

    name: str
    builder: Callable[..., nn.Module]
    input_shape: tuple[int, int, int, int]
    module: str
    task: str = "recognition"

    def num_params(self, **kwargs) -> int:
        """Parameter count of the model built with ``kwargs``, without allocating its weights."""
        with meta_device():
            model = self.builder(**kwargs)
        return count_params(model)


def _skip_meta(fn):
    @functools.wraps(fn)
    def init(tensor, *args, **kwargs):
        return tensor if isinstance(tensor, torch.Tensor) and tensor.is_meta else fn(tensor, *args, **kwargs)

    return init


@contextlib.contextmanager
def meta_device():
    """Build models on the meta device (shapes only, no memory) without running their weight init: under
    ``torch.device("meta")`` torch routes ``normal_`` through its Python reference implementations, whose first use
    imports the compiler stack (seconds) to fill tensors that hold no values. ``torch.nn.init``'s in-place
    functions leave meta tensors as they are while the block runs, and are restored after it."""
    saved = {n: getattr(nn.init, n) for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")}
    try:
        for name, fn in saved.items():
            setattr(nn.init, name, _skip_meta(fn))
        with torch.device("meta"):
            yield
    finally:
        for name, fn in saved.items():
            setattr(nn.init, name, fn)


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None,
    *,
    input_shape: tuple[int, int, int, int] = (3, 8, 224, 224),
    task: str = "recognition",
):
    """Register a builder under its function name.

    Usable bare (``@register_model``) or with metadata (``@register_model(input_shape=(3, 13, 160, 160))``).

    Args:
        fn: the builder; its ``__name__`` becomes the model name.
        input_shape: default clip shape ``(C, T, H, W)`` the model was designed for.
        task: what the model does (:attr:`ModelInfo.task`).

    Raises:
        ValueError: if the name is already registered, or ``input_shape`` does not have 4 entries.
    """
    if len(input_shape) != 4:
        raise InputError(f"input_shape must be (C, T, H, W), got {input_shape!r}")

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _MODELS:
            raise InputError(
                f"model {name!r} is already registered (by {_MODELS[name].module}); "
                f"pick another name for the builder in {builder.__module__}"
            )
        _MODELS[name] = ModelInfo(name, builder, tuple(int(s) for s in input_shape), builder.__module__, task)
        return builder

    return decorator(fn) if fn is not None else decorator


def register_variant(
    namespace: dict,
    name: str,
    cls: Callable[..., nn.Module],
    doc: str,
    *,
    num_classes: int = 400,
    input_shape: tuple[int, int, int, int] = (3, 8, 224, 224),
    task: str = "recognition",
    **fixed,
) -> Callable[..., nn.Module]:
    """Register ``name`` as ``cls(num_classes=..., **{**fixed, **kwargs})``, for families with many variants.

    Keyword arguments given to the builder override the variant's ``fixed`` ones, so a checkpoint trained with
    another toolbox's settings (a BatchNorm epsilon, normalised lateral connections) loads into the named variant.

    The builder is defined in the calling module (``namespace`` is its ``globals()``): it becomes an attribute
    of that module, joins its ``__all__``, and :class:`ModelInfo` names that module.

    Args:
        namespace: the calling module's ``globals()``.
        name: registered name.
        cls: the model class.
        doc: the builder's docstring (the reference config it mirrors).
        num_classes: the builder's default class count (the reference config's).
        input_shape: default clip ``(C, T, H, W)``.
        task: what the model does (:attr:`ModelInfo.task`).
        **fixed: constructor arguments that define the variant (``depth=50`` ...).
    """

    def builder(*, num_classes: int = num_classes, **kwargs) -> nn.Module:
        return cls(num_classes=num_classes, **{**fixed, **kwargs})

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = doc
    builder.__module__ = namespace["__name__"]
    register_model(input_shape=input_shape, task=task)(builder)
    namespace[name] = builder
    namespace.setdefault("__all__", []).append(name)
    return builder


def get_model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` registered under ``name``.

    Raises:
        UnknownModelError: naming the closest registered names.
    """
    try:
        return _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}{hint} (`vidlab models` or vidlab.list_models() lists all {len(_MODELS)})"
        ) from None


def create_model(name: str, num_classes: int | None = None, **kwargs) -> nn.Module:
    """Build a registered model.

    Keyword arguments that are ``None`` are dropped, so that unset command-line options fall through to the
    builder's defaults.

    Args:
        name: a registered name (see :func:`list_models`).
        num_classes: size of the classifier output; the builder's default when ``None``.
        **kwargs: passed on to the builder.

    Raises:
        UnknownModelError: if ``name`` is not registered.
        ModelArgumentError: if the builder rejects an argument (unknown name or unusable value); the message names
            the model and the arguments.
    """
    info = get_model_info(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    try:
        return info.builder(**kwargs)
    except ModelArgumentError as e:  # from a model built inside this one (a detector's backbone): it names both
        raise ModelArgumentError(f"{name}: {e}") from e
    except TypeError as e:
        if "argument" not in str(e):  # not about the call's arguments: a bug, keep the traceback
            raise
        raise ModelArgumentError(f"{name}: {e} (arguments: {_listed(kwargs)})") from e
    except InputError as e:
        raise ModelArgumentError(f"{name}: {e} (arguments: {_listed(kwargs)})") from e


def _listed(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items())) or "none"


def list_models(pattern: str | None = None, task: str | None = "recognition") -> list[str]:
    """Sorted registered names of ``task``'s models (``recognition``, ``detection``, ``pretrain``, ``encoder``; None:
    all), optionally filtered by a shell-style pattern (``"tsm_*"``)."""
    names = sorted(n for n, info in _MODELS.items() if task is None or info.task == task)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    return names


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements of ``model`` (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
