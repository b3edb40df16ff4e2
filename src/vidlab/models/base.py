"""The interface every video classifier in the zoo implements, and the stage protocol its backbones share."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from fnmatch import fnmatchcase
from numbers import Integral

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models.heads import average_view_scores

__all__ = [
    "FrameClassifier",
    "StageBackbone",
    "VideoClassifier",
    "check_clip",
    "check_map",
    "clips_of",
    "frames_of",
    "take_indices",
]


def check_clip(x: torch.Tensor, ndim: int = 5) -> None:
    """Raise a clear error when ``x`` is not a float ``(B, C, T, H, W)`` clip batch (``ndim=6``: with views)."""
    layout = "(B, C, T, H, W)" if ndim == 5 else "(B, V, C, T, H, W)"
    if x.dim() != ndim:
        raise InputError(f"expected a {ndim}-D input {layout}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"expected a float input (normalized clips), got {x.dtype}")


def check_map(feats: torch.Tensor) -> None:
    """Raise a clear error when ``feats`` is not the 5-D map ``forward_features`` returns (e.g. pooled features)."""
    if feats.dim() != 5:
        raise InputError(
            f"forward_head takes the (B, C, T', H', W') feature map forward_features returns, got shape "
            f"{tuple(feats.shape)}"
        )


def frames_of(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> the frames stacked along the batch, ``(B*T, C, H, W)``."""
    return x.transpose(1, 2).flatten(0, 1)


def clips_of(frames: torch.Tensor, batch: int) -> torch.Tensor:
    """``(B*T, C, H, W)`` frames of ``batch`` clips -> ``(B, C, T, H, W)`` (the inverse of :func:`frames_of`)."""
    return frames.unflatten(0, (batch, -1)).transpose(1, 2)


def take_indices(indices: int | Sequence[int] | None, n: int) -> list[int]:
    """Resolve ``forward_intermediates``' ``indices`` against ``n`` stages / blocks to indices in ``[0, n)``.

    Args:
        indices: ``None``: all ``n``; an int ``k``: the last ``k``; a sequence of ints (negative ones count from
            the end): those, in the order given.
        n: number of stages / blocks.

    Raises:
        ValueError: for an index (or count) out of range, naming the valid range.
    """
    if indices is None:
        return list(range(n))
    if isinstance(indices, Integral):
        if not 1 <= indices <= n:
            raise InputError(f"indices={indices}: an int asks for the last k stages/blocks, k in 1..{n} for this model")
        return list(range(n - int(indices), n))
    take = []
    for i in indices:
        if not isinstance(i, Integral) or not -n <= i < n:
            raise InputError(
                f"stage/block index {i!r} out of range: this model has {n}, valid indices are 0..{n - 1} "
                f"(or -{n}..-1 from the end)"
            )
        take.append(int(i) % n)
    if not take:
        raise InputError("indices is empty: give an int (the last k) or at least one stage/block index")
    return take


class StageBackbone(nn.Module):
    """A backbone run as ``forward_stem`` -> ``forward_stage(0)`` ... ``forward_stage(num_stages - 1)`` ->
    ``forward_post``; :meth:`forward` and :meth:`forward_intermediates` are written once here.

    Families implement the stem and the stages. What passes between stages is whatever the family needs (the
    feature map for CNNs; tokens and their grid for the token models, see :mod:`vidlab.models._vit`):
    ``stage_map`` turns it into the stage's ``(B, C, T', H', W')`` map (the identity for CNNs) and
    ``forward_post`` into the backbone's output (the identity, or what follows the last stage: X3D's ``conv5``,
    a transformer's final norm). Keyword arguments (``num_segments`` of the 2D backbones) reach stem and stages.
    """

    num_stages: int

    def forward_stem(self, x: torch.Tensor, **kwargs):
        """Input -> the state entering stage 0."""
        raise NotImplementedError

    def forward_stage(self, i: int, state, **kwargs):
        """Run stage ``i`` (0-based) on ``state``."""
        raise NotImplementedError

    def stage_map(self, state) -> torch.Tensor:
        """A stage's output state -> its feature map."""
        return state

    def forward_post(self, state):
        """The last stage's state -> the backbone's output."""
        return state

    def forward(self, x: torch.Tensor, **kwargs):
        state = self.forward_stem(x, **kwargs)
        for i in range(self.num_stages):
            state = self.forward_stage(i, state, **kwargs)
        return self.forward_post(state)

    def forward_intermediates(
        self, x: torch.Tensor, indices: int | Sequence[int] | None = None, **kwargs
    ) -> list[torch.Tensor]:
        """The maps of the stages ``indices`` selects (see :func:`take_indices`), in that order; stages after the
        deepest one asked for are not run."""
        take = take_indices(indices, self.num_stages)
        wanted, maps = set(take), {}
        state = self.forward_stem(x, **kwargs)
        for i in range(max(take) + 1):
            state = self.forward_stage(i, state, **kwargs)
            if i in wanted:
                maps[i] = self.stage_map(state)
        return [maps[i] for i in take]


def set_conv_memory_format(module: nn.Module, channels_last: bool) -> None:
    """Store the 4-D (2D conv) weights of ``module`` as ``channels_last`` and the 5-D (3D conv) ones as
    ``channels_last_3d``, or both back to contiguous."""
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    for p in module.parameters():
        if p.dim() in formats:
            p.data = p.data.contiguous(memory_format=formats[p.dim()] if channels_last else torch.contiguous_format)


def _under(name: str, prefixes: Sequence[str]) -> bool:
    """Whether parameter ``name`` is (under) one of the module / parameter paths ``prefixes``."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class VideoClassifier(nn.Module):
    """Base class: a ``backbone`` producing a ``(B, C', T', H', W')`` feature map and a ``head`` that pools it.

    Inputs are float clips ``(B, C, T, H, W)``, already normalized; outputs are logits ``(B, num_classes)``.

    - ``forward_features(x)``: the unpooled map ``(B, num_features, T', H', W')`` for every family (token models
      put their patch tokens back on the token grid). Families whose reference classifies a class token
      (TimeSformer, VideoMamba, MViT) attach it to the map as ``feats.cls_token``, a ``(B, C)`` tensor (after the
      final norm, as the reference classifies it).
    - ``forward_head(feats, pre_logits=False, cls_token=None)``: pooling, dropout and classifier: logits, or the
      pooled ``(B, C)`` features if ``pre_logits``. A class-token head uses ``cls_token`` if given, else
      ``feats.cls_token``, and raises ``ValueError`` if it has neither. ``forward(x)`` passes the class token
      explicitly, so ``forward_head(forward_features(x))`` equals ``forward(x)``.
    - ``forward_train(x)``: ``(logits, aux)`` with ``aux`` a list of ``(loss weight, logits)`` of auxiliary heads
      (TPN's); empty here. ``forward(x)`` returns the main logits in every mode.
    - ``forward_intermediates(x, indices=None)``: maps of the stages (CNNs) or blocks (token models, before the
      final norm) ``indices`` selects, of ``num_intermediates``: an int k the last k, a sequence of ints (negative
      from the end) those, in that order; out-of-range indices raise ``ValueError``.
    - ``num_layers`` (L, = ``num_intermediates``), ``layer_id(name)`` (stem 0, stage / block k: k, everything after
      the last one: L + 1) and ``no_weight_decay()`` for optimizer parameter groups.

    Subclasses set ``self.backbone`` (a :class:`StageBackbone`, or a module with ``num_stages`` and
    ``forward_intermediates``) and ``self.head`` (taking ``(feats, pre_logits=False)``, with ``num_classes`` and
    ``reset_classifier(n)``), and say which parameter names form the stem (``stem_prefixes``) and stage ``i``
    (``stage_prefixes``, formatted with ``i`` (0-based) and ``n = i + 1``).
    """

    backbone: nn.Module
    head: nn.Module
    #: clips per forward in :meth:`forward_views` (``test.view_chunk``): bounds the memory of long inputs with many
    #: views or windows; None: all ``B * V`` clips in one forward. The scores are the same either way.
    view_chunk: int | None = None

    #: parameter-name prefixes (module or parameter paths) of the stem: layer id 0
    stem_prefixes: tuple[str, ...] = ("backbone.conv1", "backbone.bn1")
    #: prefixes of stage ``i``: layer id ``i + 1``; ``{i}`` is replaced by ``i``, ``{n}`` by ``i + 1``
    stage_prefixes: tuple[str, ...] = ("backbone.layer{n}",)
    #: ``fnmatch`` patterns of parameters without weight decay beyond biases and norm weights (position tables ...)
    no_weight_decay_patterns: tuple[str, ...] = ()
    #: state-dict prefixes of the layers sized by the class count (``load_checkpoint(..., drop_head=True)`` leaves
    #: them at their fresh init when a checkpoint's differ)
    classifier_prefixes: tuple[str, ...] = ("head.",)

    @property
    def num_classes(self) -> int:
        """Number of classifier outputs."""
        return self.head.num_classes

    @property
    def num_features(self) -> int:
        """Channels ``C'`` of the ``forward_features`` map."""
        return self.backbone.num_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> backbone feature map ``(B, C', T', H', W')``."""
        check_clip(x)
        return self.backbone(x)

    def forward_head(
        self, feats: torch.Tensor, pre_logits: bool = False, cls_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Feature map -> logits ``(B, num_classes)``; pooled features before the classifier if ``pre_logits``.
        ``cls_token`` is used by class-token heads only (see the class docstring)."""
        check_map(feats)
        return self.head(feats, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> logits ``(B, num_classes)``."""
        return self.forward_head(self.forward_features(x))

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[float, torch.Tensor]]]:
        """The training forward: ``(logits, [(loss weight, auxiliary logits), ...])``; no auxiliary heads here."""
        return self(x), []

    @property
    def num_intermediates(self) -> int:
        """How many stages / blocks :meth:`forward_intermediates` chooses from."""
        return self.backbone.num_stages

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """``(B, C, T, H, W)`` -> the ``(B, C_k, T_k, H_k, W_k)`` maps of the stages / blocks ``indices`` selects
        (``None``: all; an int k: the last k; a sequence of ints, negative from the end: those, in that order).

        Raises:
            ValueError: for an index out of ``0 .. num_intermediates - 1`` (or ``-num_intermediates .. -1``).
        """
        check_clip(x)
        return self.backbone.forward_intermediates(x, indices)

    @property
    def num_layers(self) -> int:
        """L: the stages / blocks of layer-wise lr decay (:meth:`layer_id` gives 0 .. L + 1)."""
        return self.num_intermediates

    def _stage_prefixes(self, i: int) -> tuple[str, ...]:
        return tuple(p.format(i=i, n=i + 1) for p in self.stage_prefixes)

    def layer_id(self, name: str) -> int:
        """Layer id of parameter ``name`` (a ``named_parameters()`` name): 0 for the stem (first conv, patch
        embedding, position tables, class token), ``k`` for stage / block ``k`` (1 .. L), L + 1 for everything
        after the last one (final norm, ``fc_norm``, classifier, TPN's neck).

        Raises:
            ValueError: if ``name`` is not a parameter of the model.
        """
        try:
            self.get_parameter(name)
        except AttributeError:
            names = [n for n, _ in self.named_parameters()]
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"{name!r} is not a parameter of this {type(self).__name__}{hint}") from None
        if _under(name, self.stem_prefixes):
            return 0
        for i in range(self.num_layers):
            if _under(name, self._stage_prefixes(i)):
                return i + 1
        return self.num_layers + 1

    def no_weight_decay(self) -> set[str]:
        """Names of parameters to train without weight decay beyond those with ``ndim <= 1`` (biases and norm
        weights, which the optimizer leaves out itself): position tables, class tokens, relative position tables."""
        return {n for n, _ in self.named_parameters() if any(fnmatchcase(n, p) for p in self.no_weight_decay_patterns)}

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the last classifier layer with a freshly initialised one with ``num_classes`` outputs."""
        self.head.reset_classifier(num_classes)

    def to_channels_last(self) -> VideoClassifier:
        """Store 2D conv weights as ``channels_last`` and 3D ones as ``channels_last_3d``; returns ``self``.

        ``model.to(memory_format=torch.channels_last)`` fails on 5-D weights, and 2D and 3D families differ;
        this picks the format per parameter. Convolutions then produce channels-last activations.
        """
        set_conv_memory_format(self, channels_last=True)
        return self

    def check_views(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a batch of views ``(B, V, C, T, H, W)``."""
        check_clip(x, ndim=6)

    def forward_views(self, x: torch.Tensor, average_clips: str | None = "prob") -> torch.Tensor:
        """Multi-view testing: one score per sample from V views of it.

        The default runs every view as its own clip and fuses the per-view logits with
        :func:`~vidlab.models.heads.average_view_scores` (as MMAction2's 3D recognizers and TSM do). Families
        whose reference fuses views earlier (TSN averages features) override this.

        Args:
            x: ``(B, V, C, T, H, W)``; V = ``num_clips * num_crops`` views of each sample.
            average_clips: ``"prob"`` (mean of softmax), ``"score"`` (mean of logits) or ``None`` (mean of
                logits, see :func:`~vidlab.models.heads.average_view_scores`).

        Clips go through the model ``view_chunk`` at a time when that is set (chunked inference).

        Returns:
            ``(B, num_classes)`` float32 scores: probabilities for ``"prob"``, logits otherwise.
        """
        self.check_views(x)
        b, v = x.shape[:2]
        clips = x.flatten(0, 1)
        chunk = self.view_chunk or len(clips)
        logits = torch.cat([self(part) for part in clips.split(chunk)])  # (B*V, K), view_chunk clips per forward
        return average_view_scores(logits.view(b, v, -1), average_clips)


class FrameClassifier(VideoClassifier):
    """A 2D backbone applied to the T frames of a clip stacked along the batch (MMAction2's ``Recognizer2D``).

    ``forward_features`` reshapes ``(B, C, T, H, W)`` to ``(B * T, C, H, W)``, runs
    ``backbone(frames, num_segments=T)`` (temporal modules mix frames within each clip) and returns
    ``(B, C', T, H', W')``; ``forward_intermediates`` does the same with the backbone's stages.

    Args:
        num_segments: if set, inputs must have exactly this many frames (families with fixed-size temporal layers
            set it; others leave it ``None`` and follow the input's T).
    """

    def __init__(self, num_segments: int | None = None) -> None:
        super().__init__()
        self.num_segments = num_segments

    def _frames(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        check_clip(x)
        b, t = x.shape[0], x.shape[2]
        if self.num_segments is not None and t != self.num_segments:
            raise InputError(
                f"this {type(self).__name__} was built for num_segments={self.num_segments} frames, got T={t}"
            )
        return frames_of(x), b, t

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        frames, b, t = self._frames(x)
        return clips_of(self.backbone(frames, num_segments=t), b)  # (B, C', T, H', W')

    def forward_intermediates(self, x: torch.Tensor, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        frames, b, t = self._frames(x)
        return [clips_of(f, b) for f in self.backbone.forward_intermediates(frames, indices, num_segments=t)]
