"""C3D: Learning Spatiotemporal Features with 3D Convolutional Networks (arXiv:1412.0767), as MMAction2's
``C3D`` backbone + ``I3DHead`` (no spatial pooling): eight 3x3x3 convs with biases, five max-pools, two
4096-wide fully connected layers (``backbone.fc6``, ``backbone.fc7``), then dropout and ``head.fc``.

``forward_features`` returns the last pool's ``(B, 512, 1, 4, 4)`` map; ``fc6``/``fc7`` run in ``forward_head``
(they stay under ``backbone.``, as the checkpoints name them). The input must be 16 x 112 x 112 (``fc6`` takes
the flattened 512 x 1 x 4 x 4 map).
"""

from __future__ import annotations

import torch
from torch import nn

from vidlab.errors import InputError
from vidlab.models._registry import register_variant
from vidlab.models.base import StageBackbone, VideoClassifier, check_map
from vidlab.models.heads import _LinearHead

__all__ = ["C3D", "C3DBackbone"]

_CONVS = (("conv1a", 3, 64), ("conv2a", 64, 128), ("conv3a", 128, 256), ("conv3b", 256, 256))
_CONVS += (("conv4a", 256, 512), ("conv4b", 512, 512), ("conv5a", 512, 512), ("conv5b", 512, 512))
# max-pool after these convs: (kernel = stride, padding)
_POOLS = {"conv1a": ((1, 2, 2), 0), "conv2a": ((2, 2, 2), 0), "conv3b": ((2, 2, 2), 0), "conv4b": ((2, 2, 2), 0)}
_POOLS["conv5b"] = ((2, 2, 2), (0, 1, 1))
# the stem (conv1a and its pool) and the four stages, each ending with a pool
_STEM = ("conv1a",)
_STAGES = (("conv2a",), ("conv3a", "conv3b"), ("conv4a", "conv4b"), ("conv5a", "conv5b"))


class C3DBackbone(StageBackbone):
    """Convs + pools: ``(B, 3, 16, 112, 112)`` -> ``(B, 512, 1, 4, 4)``; :meth:`forward_fc` applies ``fc6``/``fc7``
    (ReLU, dropout between them) to that map: ``(B, 4096)``.

    Stages (``forward_intermediates``): ``conv2a``; ``conv3a/b``; ``conv4a/b``; ``conv5a/b``, each with its pool.

    Init (MMAction2's): convs Kaiming normal (fan_out), linear layers normal with std ``init_std`` (0.005).
    """

    num_stages = len(_STAGES)

    def __init__(self, *, out_dim: int = 8192, dropout: float = 0.5, init_std: float = 0.005) -> None:
        super().__init__()
        self.out_dim = out_dim
        for name, cin, cout in _CONVS:
            self.add_module(name, nn.Conv3d(cin, cout, 3, padding=1))
        self.fc6 = nn.Linear(out_dim, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.pools = {name: nn.MaxPool3d(k, stride=k, padding=p) for name, (k, p) in _POOLS.items()}
        self.num_features = 512
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=init_std)
                nn.init.zeros_(m.bias)

    def _convs(self, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = self.relu(getattr(self, name)(x))
            if name in self.pools:
                x = self.pools[name](x)
        return x

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self._convs(_STEM, x)

    def forward_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return self._convs(_STAGES[i], x)

    def forward_fc(self, x: torch.Tensor) -> torch.Tensor:
        """The last pool's map -> ``fc7`` activations ``(B, 4096)``.

        Raises:
            ValueError: if the map does not have ``fc6``'s input size (the clip was not 16 x 112 x 112).
        """
        x = x.flatten(1)
        if x.shape[1] != self.out_dim:
            raise InputError(
                f"C3D's fc6 takes {self.out_dim} features (a 16 x 112 x 112 clip); this clip gives {x.shape[1]}"
            )
        x = self.relu(self.fc6(x))
        return self.relu(self.fc7(self.dropout(x)))


class _FlatHead(_LinearHead):
    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.fc(self.dropout(x))


class C3D(VideoClassifier):
    """C3D classifier; ``forward_features`` returns the last pool's map ``(B, 512, 1, 4, 4)``, ``forward_head``
    applies ``backbone.fc6``/``fc7``, dropout and ``head.fc`` (``pre_logits``: the ``fc7`` activations).

    Layer ids: ``conv1a`` 0, the four stages 1-4, ``fc6``/``fc7`` and the head 5.

    Args:
        num_classes: classifier outputs (101: MMAction2's UCF-101 config).
        dropout: dropout after ``fc6`` and before ``head.fc``.
        init_std: std of the normal init of ``head.fc`` (0.01).
    """

    stem_prefixes = tuple(f"backbone.{n}" for n in _STEM)

    def __init__(self, *, num_classes: int = 101, dropout: float = 0.5, init_std: float = 0.01) -> None:
        super().__init__()
        self.backbone = C3DBackbone(dropout=dropout)
        self.head = _FlatHead(4096, num_classes, dropout=dropout, init_std=init_std)

    def _stage_prefixes(self, i: int) -> tuple[str, ...]:
        return tuple(f"backbone.{n}" for n in _STAGES[i])

    def forward_head(
        self, feats: torch.Tensor, pre_logits: bool = False, cls_token: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_map(feats)
        return self.head(self.backbone.forward_fc(feats), pre_logits=pre_logits)


register_variant(
    globals(),
    "c3d_sports1m",
    C3D,
    doc="C3D (MMAction2 ``c3d_sports1m-pretrained_8xb30-16x1x1-45e_ucf101-rgb``: 16 frames, 112 x 112).",
    num_classes=101,
    input_shape=(3, 16, 112, 112),
)
