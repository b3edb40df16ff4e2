"""Masked teacher distillation: a student that sees a few tokens of a clip learns to reproduce, at those tokens, the
features a frozen teacher computes from the whole clip (Unmasked Teacher, Li et al., ICCV 2023: OpenGVLab
``unmasked_teacher/single_modality``; VideoMamba's masked pre-training, Li et al., ECCV 2024:
``videomamba/video_sm/models/videomamba_pretrain.py``).

One step of :class:`MaskedDistiller` (``forward(x)``, ``x`` a normalised ``(B, C, T, H, W)`` clip):

1. The teacher (frozen, eval mode, under ``torch.no_grad()``) runs on the whole clip, renormalised to its own input
   statistics and resized to its input size if it has one. It gives the features of its aligned layers on its token
   grid and a non-negative *guide* per token: for a CLIP teacher the last block's attention of the class token to
   each frame's patch tokens, averaged over heads (UMT); for any other vidlab model the L2 norm over channels of its
   deepest aligned feature map (or a uniform guide). Features and guide are resampled to the student's token grid
   when the grids differ (average pooling when shrinking, trilinear interpolation otherwise).
2. Per student frame of ``N`` patch tokens, ``N - int(N * mask_ratio)`` visible tokens are drawn without
   replacement with probability proportional to the guide (``torch.multinomial`` over all ``N``, the first ones
   kept, as UMT's engine), from the global torch RNG unless a mask is given. A class token is always visible.
3. The student runs on the visible tokens only (``backbone.forward_visible``). The outputs of its aligned blocks get
   its final norm, the fixed sine-cosine position table at their own positions (a class token at position 0), then
   one decoder per aligned layer (``Linear`` to the teacher's width, ``LayerNorm``), and are L2-normalised.
4. The loss is ``2 - 2 cos`` between student and (L2-normalised) teacher features over the visible tokens, averaged
   over tokens, clips and aligned layers.

Aligned layers follow UMT: with ``K`` pairs, the teacher's blocks ``L_t - int(i * interval) - 1`` and the student's
``L_s - int(i * student_interval) - 1`` for ``i < K``, paired in ascending order (:func:`return_indices`).

The teacher is not a submodule: it is in neither ``state_dict()`` nor ``parameters()``, but follows the distiller's
``.to()``. The distiller's state dict holds the student under ``student.`` and the alignment modules under
``align.``; vidlab's loader reads such a checkpoint in the student's own names (:func:`student_state_dict`), so
``vidlab.load_checkpoint(student, path, strict=False)`` loads it into the plain student (reporting ``align.*`` as
unexpected).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from vidlab.errors import InputError
from vidlab.models.base import check_clip
from vidlab.models.layers.transformer import sincos_table, token_grid

__all__ = [
    "GUIDES",
    "MaskedDistiller",
    "TeacherTargets",
    "draw_guided_mask",
    "on_grid",
    "return_indices",
    "student_state_dict",
]

#: how the teacher guides the mask: CLS-to-patch attention (CLIP teachers), feature norm, or nothing
GUIDES = ("auto", "attention", "norm", "uniform")


class TeacherTargets(NamedTuple):
    """What the teacher gives for one clip batch, on its own token grid."""

    maps: list[torch.Tensor]  #: per aligned layer, ``(B, D_k, T, H, W)`` features (not normalised)
    cls: list[torch.Tensor] | None  #: per aligned layer, ``(B, D_k)`` class-token features, or None
    guide: torch.Tensor  #: ``(B, T, H, W)`` non-negative token weights for the mask


def return_indices(depth: int, count: int, interval: float = 1.0) -> list[int]:
    """UMT's ``return_index``: blocks ``depth - int(i * interval) - 1`` for ``i < count``, in ascending order.

    Raises:
        ValueError: when that reaches below block 0, or names a block twice (an interval below 1).
    """
    if count < 1:
        raise InputError(f"count must be >= 1 aligned layer, got {count}")
    idx = [depth - int(i * interval) - 1 for i in range(count)]
    if min(idx) < 0 or len(set(idx)) != count:
        raise InputError(
            f"{count} layers at interval {interval} do not fit {depth} blocks/stages (blocks {sorted(idx)})"
        )
    return sorted(idx)


def draw_guided_mask(guide: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """UMT's attention-guided mask: ``guide`` ``(R, N)`` non-negative weights, one row per frame -> bool ``(R, N)``,
    True = hidden. Each row keeps ``N - int(N * mask_ratio)`` tokens: the first ones of a ``torch.multinomial``
    draw of all ``N`` without replacement (so likelier tokens stay visible more often). Weights are clamped to the
    smallest positive float so that zero weights (an all-zero feature) can still be drawn last."""
    r, n = guide.shape
    n_vis = n - int(n * mask_ratio)
    if n_vis < 1:
        raise InputError(f"mask_ratio {mask_ratio} leaves no visible token of {n} per frame")
    order = torch.multinomial(guide.float().clamp_min(torch.finfo(torch.float32).tiny), n, generator=generator)
    mask = torch.ones(r, n, dtype=torch.bool, device=guide.device)
    return mask.scatter_(1, order[:, :n_vis], False)


def on_grid(x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """``(B, C, T, H, W)`` resampled to the ``(T', H', W')`` grid: itself if equal, average pooling if no axis
    grows, else trilinear interpolation (``align_corners=False``)."""
    size = tuple(x.shape[2:])
    if size == tuple(grid):
        return x
    if all(a >= b for a, b in zip(size, grid)):
        return F.adaptive_avg_pool3d(x.float(), grid)
    return F.interpolate(x.float(), size=grid, mode="trilinear", align_corners=False)


class _Decoder(nn.Module):
    """UMT's ``Linear_Decoder``: ``norm(head(x))`` (the L2 normalisation follows in the loss)."""

    def __init__(self, dim: int, out_dim: int, norm_eps: float) -> None:
        super().__init__()
        self.head = nn.Linear(dim, out_dim)
        self.norm = nn.LayerNorm(out_dim, eps=norm_eps)
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.head(x))


def _stat(values, name: str) -> torch.Tensor | None:
    if values is None:
        return None
    t = torch.as_tensor(values, dtype=torch.float32).flatten()
    if t.numel() != 3:
        raise InputError(f"{name} needs 3 values (one per channel), got {list(t.tolist())}")
    return t.view(1, 3, 1, 1, 1)


def _renormalisation(data_mean, data_std, teacher_mean, teacher_std) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``(scale, shift, needed)`` of ``x -> x * scale + shift`` from the data's normalisation to the teacher's (the
    identity when no teacher statistics are given).

    Raises:
        ValueError: for a mean without its std, or teacher statistics without the data's.
    """
    stats = [_stat(v, n) for v, n in ((data_mean, "data_mean"), (data_std, "data_std"))]
    tstats = [_stat(v, n) for v, n in ((teacher_mean, "teacher_mean"), (teacher_std, "teacher_std"))]
    if (tstats[0] is None) != (tstats[1] is None) or (stats[0] is None) != (stats[1] is None):
        raise InputError("give mean and std together (data_mean/data_std, teacher_mean/teacher_std)")
    if tstats[0] is not None and stats[0] is None:
        raise InputError("teacher_mean/teacher_std need data_mean/data_std (the input's normalisation)")
    if tstats[0] is None:
        return torch.ones(1, 3, 1, 1, 1), torch.zeros(1, 3, 1, 1, 1), False
    return stats[1] / tstats[1], (stats[0] - tstats[0]) / tstats[1], True


class MaskedDistiller(nn.Module):
    """Student + alignment decoders trained to match a frozen teacher on attention-guided visible tokens.

    ``forward(x, mask=None)`` -> ``{"loss", "mask", "layer_losses"}``: the scalar loss, the bool ``(B, T'N)`` mask
    over the student's patch tokens (True = hidden; drawn from the global torch RNG when not given) and the loss of
    each aligned layer (detached).

    Args:
        student: a vidlab model whose backbone has ``forward_visible`` (``videomae_vit_*``, ``videomamba_*``).
        teacher: a vidlab model: a CLIP tower (``forward_teacher``: aligned features after ``ln_post`` and ``proj``,
            class token, CLS attention) or any other model (``forward_intermediates``: its stage / block maps). It is
            frozen and put in eval mode.
        student_layers: the student's aligned blocks (0-based), ascending; see :func:`return_indices`.
        teacher_layers: the teacher's aligned blocks / stages, as many, ascending.
        teacher_dims: channels of each aligned teacher layer; None: the CLIP tower's ``output_dim``, or read off a
            teacher forward on zeros of ``probe_shape``.
        probe_shape: ``(C, T, H, W)`` of that forward (teachers other than CLIP without ``teacher_dims``).
        mask_ratio: the fraction of each frame's patch tokens hidden (0.8 in UMT's and VideoMamba's recipes).
        guide: ``attention`` (CLIP teachers), ``norm``, ``uniform``, or ``auto`` (attention where the teacher gives it,
            else norm).
        align_cls: for a student with a class token and a teacher giving class-token features: align the student's
            class token with the teacher's frame-averaged class token (VideoMamba's ``clip_return_cls``); otherwise
            the student's class token is run but not aligned.
        teacher_ln_post: CLIP teachers: ``ln_post`` before ``proj`` on the aligned layers (UMT); False skips it
            (VideoMamba's teacher with ``clip_return_cls``).
        data_mean, data_std: the normalisation of ``x`` (any units, three values each).
        teacher_mean, teacher_std: the teacher's input normalisation in the same units; None: the same as the data's.
        teacher_input_size: resize frames (bicubic, ``align_corners=False``) to this side for the teacher when they
            differ (UMT's ``clip_input_resolution``: 196 for L/14 with a 16-pixel-patch student at 224).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        *,
        student_layers: Sequence[int],
        teacher_layers: Sequence[int],
        teacher_dims: Sequence[int] | None = None,
        probe_shape: Sequence[int] | None = None,
        mask_ratio: float = 0.8,
        guide: str = "auto",
        align_cls: bool = True,
        teacher_ln_post: bool = True,
        data_mean: Sequence[float] | None = None,
        data_std: Sequence[float] | None = None,
        teacher_mean: Sequence[float] | None = None,
        teacher_std: Sequence[float] | None = None,
        teacher_input_size: int | None = None,
    ) -> None:
        super().__init__()
        backbone = getattr(student, "backbone", None)
        if not hasattr(backbone, "forward_visible"):
            raise InputError(
                f"{type(student).__name__} cannot be a distillation student: its backbone has no forward_visible "
                "(students: videomae_vit_*, videomamba_*)"
            )
        if "align" in dict(student.named_children()):
            raise InputError(f"{type(student).__name__} has a submodule named 'align', which the distiller uses")
        if not 0 <= mask_ratio < 1:
            raise InputError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        if guide not in GUIDES:
            raise InputError(f"guide must be one of {list(GUIDES)}, got {guide!r}")
        self.student_layers, self.teacher_layers = [int(i) for i in student_layers], [int(i) for i in teacher_layers]
        if len(self.student_layers) != len(self.teacher_layers) or not self.student_layers:
            raise InputError(
                f"student_layers {self.student_layers} and teacher_layers {self.teacher_layers} must pair up (same "
                "non-zero length)"
            )
        _check_layers("student_layers", self.student_layers, student.num_layers)
        _check_layers("teacher_layers", self.teacher_layers, _depth(teacher))
        self.student = student
        self._teacher = (teacher.eval().requires_grad_(False),)
        self.is_clip_teacher = hasattr(teacher, "forward_teacher")
        self.guide = ("attention" if self.is_clip_teacher else "norm") if guide == "auto" else guide
        if self.guide == "attention" and not self.is_clip_teacher:
            raise InputError(
                f"guide=attention needs a teacher with a class token's attention (a CLIP tower); "
                f"{type(teacher).__name__} has none: use norm or uniform"
            )
        self.mask_ratio = float(mask_ratio)
        self.teacher_ln_post = teacher_ln_post
        self.teacher_input_size = teacher_input_size
        self.has_cls = hasattr(backbone, "cls_token")
        self.align_cls = bool(align_cls) and self.has_cls and self.is_clip_teacher
        scale, shift, self._renorm = _renormalisation(data_mean, data_std, teacher_mean, teacher_std)
        self.register_buffer("_scale", scale, False)
        self.register_buffer("_shift", shift, False)

        if teacher_dims is None:
            teacher_dims = self._teacher_dims(teacher, probe_shape)
        teacher_dims = [int(d) for d in teacher_dims]
        if len(teacher_dims) != len(self.teacher_layers):
            raise InputError(f"teacher_dims {teacher_dims}: one per teacher layer {self.teacher_layers}")
        width = backbone.embed_dim
        eps = _norm_eps(backbone)
        self.align = nn.Module()
        self.align.decoders = nn.ModuleList(_Decoder(width, d, eps) for d in teacher_dims)
        own_norm = getattr(backbone, "norm_f", None) or getattr(backbone, "norm", None)
        if own_norm is None:  # a ViT with mean pooling: UMT's encoder norm exists for pre-training only
            self.align.norm = nn.LayerNorm(width, eps=eps)
        self._pos_cache: dict = {}
        # parts of the student the distillation never reaches: frozen, so optimizers and DDP leave them alone
        for name, p in student.named_parameters():
            if name.startswith(("head.", "backbone.fc_norm.")):
                p.requires_grad_(False)

    # -- the teacher -----------------------------------------------------------------------------------------------

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher (not a submodule)."""
        return self._teacher[0]

    def _teacher_dims(self, teacher: nn.Module, probe_shape) -> list[int]:
        if self.is_clip_teacher:
            return [teacher.backbone.output_dim] * len(self.teacher_layers)
        if probe_shape is None:
            raise InputError(
                f"teacher_dims or probe_shape is needed for a {type(teacher).__name__} teacher (its layers' widths)"
            )
        p = next(teacher.parameters())
        with torch.no_grad():
            maps = teacher.forward_intermediates(torch.zeros(1, *probe_shape, device=p.device), self.teacher_layers)
        return [m.shape[1] for m in maps]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)  # the teacher follows .to() / .cuda() / .half()
        return self

    def teacher_input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` renormalised to the teacher's statistics and resized to its input size (when set)."""
        if self._renorm:
            x = x * self._scale.to(x.dtype) + self._shift.to(x.dtype)
        size = self.teacher_input_size
        if size and (x.shape[3] != size or x.shape[4] != size):
            b, c, t, h, w = x.shape
            x = F.interpolate(x.reshape(b, c * t, h, w), size=(size, size), mode="bicubic", align_corners=False)
            x = x.view(b, c, t, size, size)
        return x

    @torch.no_grad()
    def teacher_targets(self, x: torch.Tensor) -> TeacherTargets:
        """The teacher's features and guide for the normalised clip ``x`` (on the teacher's grid)."""
        teacher = self.teacher
        if teacher.training:
            teacher.eval()
        x = self.teacher_input(x)
        if self.is_clip_teacher:
            maps, cls, attention = teacher.forward_teacher(x, self.teacher_layers, self.teacher_ln_post)
        else:
            maps, cls, attention = teacher.forward_intermediates(x, self.teacher_layers), None, None
        if self.guide == "attention":
            guide = attention
        elif self.guide == "norm":
            guide = maps[-1].float().norm(dim=1)
        else:
            guide = maps[-1].new_ones(maps[-1][:, 0].shape, dtype=torch.float32)
        return TeacherTargets(maps, cls, guide)

    # -- masking -----------------------------------------------------------------------------------------------------

    def draw_mask(self, guide: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """A ``(B, T'H'W')`` bool mask over the student's patch tokens (True = hidden) from the teacher's ``(B, T, H,
        W)`` guide, resampled to the student's ``grid``: per student frame, :func:`draw_guided_mask`."""
        b = guide.shape[0]
        g = on_grid(guide.unsqueeze(1).float(), grid).squeeze(1)  # (B, T', H', W')
        return draw_guided_mask(g.reshape(b * grid[0], -1), self.mask_ratio).view(b, -1)

    def _check_mask(self, mask: torch.Tensor, b: int, grid: tuple[int, int, int]) -> torch.Tensor:
        n = grid[0] * grid[1] * grid[2]
        if mask.shape != (b, n) or mask.dtype != torch.bool:
            raise InputError(
                f"mask must be a bool ({b}, {n}) tensor over the student's patch tokens (grid {grid}), got "
                f"{mask.dtype} {tuple(mask.shape)}"
            )
        return mask

    # -- the student -------------------------------------------------------------------------------------------------

    def _positions(self, n: int, dim: int, device, dtype) -> torch.Tensor:
        key = (n, dim, device, dtype)
        if key not in self._pos_cache:
            self._pos_cache = {key: sincos_table(n, dim).to(device=device, dtype=dtype)}
        return self._pos_cache[key]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        check_clip(x)
        backbone = self.student.backbone
        b = x.shape[0]
        grid = token_grid(x, backbone.patch)
        with torch.no_grad():
            targets = self.teacher_targets(x)
            mask = self.draw_mask(targets.guide, grid) if mask is None else self._check_mask(mask, b, grid)
            visible = ~mask
            goals = []
            for k, m in enumerate(targets.maps):
                t = F.normalize(on_grid(m, grid).flatten(2).transpose(1, 2).float(), dim=-1)  # (B, T'N, D)
                t = t[visible].view(b, -1, t.shape[-1])
                if self.align_cls:
                    t = torch.cat((F.normalize(targets.cls[k].float(), dim=-1).unsqueeze(1), t), dim=1)
                goals.append(t)
        _, feats = backbone.forward_visible(x, mask, tuple(self.student_layers))
        prefix = 1 if self.has_cls else 0
        keep = torch.cat((visible.new_ones(b, prefix), visible), dim=1)  # student token positions, CLS at 0
        if self.has_cls and not self.align_cls:
            feats = [f[:, 1:] for f in feats]
            keep[:, 0] = False
        width = feats[0].shape[-1]
        pos = self._positions(keep.shape[1], width, x.device, feats[0].dtype).expand(b, -1, -1)[keep].view(b, -1, width)
        norm = getattr(self.align, "norm", None) or getattr(backbone, "norm_f", None) or backbone.norm
        losses = []
        for decoder, f, t in zip(self.align.decoders, feats, goals):
            y = F.normalize(decoder(norm(f) + pos).float(), dim=-1)
            losses.append((2 - 2 * (y * t).sum(dim=-1)).mean())
        layer_losses = torch.stack(losses)
        return {"loss": layer_losses.mean(), "mask": mask, "layer_losses": layer_losses.detach()}

    # -- what the engine and the loaders use -------------------------------------------------------------------------

    @property
    def num_classes(self) -> int:
        """The student's class count (a distillation checkpoint describes the student)."""
        return self.student.num_classes

    @property
    def num_layers(self) -> int:
        return self.student.num_layers

    def layer_id(self, name: str) -> int:
        """``student.X``: the student's layer id of ``X``; the alignment modules: L + 1."""
        if name.startswith("student."):
            return self.student.layer_id(name.removeprefix("student."))
        self.get_parameter(name)  # raises for a name that is not a parameter
        return self.num_layers + 1

    def no_weight_decay(self) -> set[str]:
        return {"student." + n for n in self.student.no_weight_decay()}

    def adapt_state_dict(
        self, state_dict: dict[str, torch.Tensor], source_frames: int | None = None
    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        """A state dict in the student's own names (a student's checkpoint, or a distiller's as the loader renames
        it) or in the distiller's, in the distiller's names, with the student's :meth:`adapt_state_dict` applied
        (position tables resized): what ``vidlab.load_checkpoint(distiller, path)`` loads."""
        inner = {k.removeprefix("student."): v for k, v in state_dict.items() if not k.startswith("align.")}
        adapt = getattr(self.student, "adapt_state_dict", None)
        inner, notes = adapt(inner, source_frames) if adapt is not None else (inner, [])
        align = {k: v for k, v in state_dict.items() if k.startswith("align.")}
        return {**{"student." + k: v for k, v in inner.items()}, **align}, notes

    def to_channels_last(self) -> MaskedDistiller:
        self.student.to_channels_last()
        return self

    def extra_repr(self) -> str:
        return (
            f"teacher={type(self.teacher).__name__} (frozen, not in the state dict), "
            f"student_layers={self.student_layers}, teacher_layers={self.teacher_layers}, "
            f"mask_ratio={self.mask_ratio}, guide={self.guide}, align_cls={self.align_cls}"
        )


def _depth(model: nn.Module) -> int:
    return getattr(model, "num_intermediates", None) or model.num_layers


def _check_layers(name: str, layers: list[int], depth: int) -> None:
    if any(not 0 <= i < depth for i in layers) or layers != sorted(set(layers)):
        raise InputError(f"{name} {layers} must be distinct, ascending blocks/stages in 0..{depth - 1}")


def _norm_eps(backbone: nn.Module) -> float:
    """The student's LayerNorm / RMSNorm epsilon (UMT's decoders use the student's norm layer)."""
    for m in backbone.modules():
        if isinstance(m, nn.LayerNorm) or hasattr(m, "eps") and hasattr(m, "weight"):
            return float(m.eps)
    return 1e-6


def student_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A :class:`MaskedDistiller`'s state dict in the plain student's names: ``student.X`` -> ``X``, the alignment
    modules' ``align.*`` unchanged (a student loading it reports them as unexpected). A state dict without
    ``student.`` keys is returned as it is."""
    if not any(k.startswith("student.") for k in state_dict):
        return state_dict
    return {k.removeprefix("student."): v for k, v in state_dict.items()}
