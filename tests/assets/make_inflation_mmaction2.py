"""Write tests/assets/inflation_mmaction2.json: what MMAction2 1.2.0's own 2D-ImageNet -> 3D initialisation loads.

Run in the reference environment (MMAction2 1.2.0, not a vidlab dependency)::

    PYTHONPATH=/work/shared/refs:tests/assets /tmp/refs/mm/bin/python tests/assets/make_inflation_mmaction2.py

The 2D sources are synthetic image checkpoints whose every float tensor is :func:`fixture_fill.fill` of its key and
shape (``num_batches_tracked`` is ``tensor(0)``), so the fixture stores key lists, not tensors:

- a torchvision-layout ResNet-50 (``conv1``, ``bn1``, ``layer{k}.{j}.conv{n}/bn{n}``, ``downsample.0/1``, ``fc``;
  the ResNet-18 key list is recorded too), saved to a temporary ``.pth`` and given to the backbone as
  ``pretrained`` (with ``pretrained2d=True`` where the class has it; SlowFast: ``slow_pathway.pretrained``);
- a tiny timm-layout image ViT (embed 32, 2 blocks, 4 heads, 48 px, patch 16), filled under its timm key names and
  then renamed to the mmcv-transformer layout of OpenMMLab's ``vit_base_patch16_224.pth`` that
  ``TimeSformer.init_weights`` reads (:func:`vit_to_mm`; timm's ``head`` has no place there and is dropped).

Each case builds the MMAction2 *backbone* alone from the model's MMAction2 config (:func:`mmaction2_ref.model_config`),
overwrites every float parameter and buffer with NaN (integer buffers with -1), calls the backbone's own
``init_weights()`` and records, per state-dict key, whether it left the sentinel ("loaded": shape, dtype and
``zlib.crc32`` of the tensor's bytes, plus ``src``, the 2D key it equals after copy / inflation / zero-padded
inflation, found by comparing values) or not ("left_at_init"), and which 2D keys were never a source ("unused_2d";
for ResNets this is checked against the set MMAction2 itself logs as not loaded). For SlowFast the random
initialisers MMAction2 calls next to the load (the lateral convs' ``kaiming_init``, the scratch init of the
fast pathway) are made no-ops during that run, so only file values leave the sentinel; the fast pathway is then
tried with the same file on its own and the exception recorded. Every case is run a second time the ordinary
way (no sentinel, no patches) to check the loaded checksums and to list the keys left at init that are exactly
zero there ("left_at_init_zero", e.g. TimeSformer's ``temporal_fc`` and ``time_embed``).
"""

import ast
import json
import logging
import math
import sys
import tempfile
import zlib
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)
from fixture_fill import fill  # beside this script

# isort: split
import mmaction
import mmaction.models.backbones.resnet3d as mm_resnet3d
import mmaction.models.backbones.resnet3d_slowfast as mm_slowfast
import torch
from make_mmaction2_fixtures import _TINY_TIMESFORMER  # the tiny TimeSformer of the logits fixtures
from mmaction.registry import MODELS
from mmaction.utils import register_all_modules
from mmaction2_ref import ALL, model_config
from mmengine.logging import MMLogger

OUT = Path(__file__).with_name("inflation_mmaction2.json")
RESNET_FILE = "<image_resnet 50>"  # placeholders for the temporary checkpoint paths in the recorded overrides
VIT_FILE = "<image_vit>"
TINY_VIT = {"embed_dim": 32, "depth": 2, "num_heads": 4, "img_size": 48, "patch_size": 16}

# vidlab model name -> (image source, backbone overrides on top of mmaction2_ref.model_config; dotted = nested)
CASES: dict[str, tuple[str, dict]] = {
    "i3d_r50": ("resnet50", {"pretrained": RESNET_FILE, "pretrained2d": True}),
    "i3d_r50_nl_embedded_gaussian": ("resnet50", {"pretrained": RESNET_FILE, "pretrained2d": True}),
    "slowonly_r50_8x8": ("resnet50", {"pretrained": RESNET_FILE, "pretrained2d": True}),
    "slowfast_r50_8x8": ("resnet50", {"slow_pathway.pretrained": RESNET_FILE}),
    "c2d_r50": ("resnet50", {"pretrained": RESNET_FILE}),
    "tpn_slowonly_r50": ("resnet50", {"pretrained": RESNET_FILE, "pretrained2d": True}),
    "ircsn_r50": ("resnet50", {"pretrained": RESNET_FILE, "pretrained2d": True}),
    "timesformer_divst": ("vit", {**_TINY_TIMESFORMER, "pretrained": VIT_FILE}),
    "timesformer_spaceonly": ("vit", {**_TINY_TIMESFORMER, "pretrained": VIT_FILE}),
    "timesformer_jointst": ("vit", {**_TINY_TIMESFORMER, "pretrained": VIT_FILE}),
}


def image_resnet_keys(depth: int) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of torchvision's ``resnet{depth}`` state dict, in its order (v1.5 layout; shapes do not
    depend on where the stride sits)."""
    block, expansion, counts = {18: ("basic", 1, (2, 2, 2, 2)), 50: ("bottleneck", 4, (3, 4, 6, 3))}[depth]

    def bn(name: str, c: int) -> list:
        return [(f"{name}.{p}", (c,)) for p in ("weight", "bias", "running_mean", "running_var")] + [
            (f"{name}.num_batches_tracked", ())
        ]

    keys = [("conv1.weight", (64, 3, 7, 7)), *bn("bn1", 64)]
    inplanes = 64
    for stage, count in enumerate(counts):
        planes = 64 * 2**stage
        for j in range(count):
            p = f"layer{stage + 1}.{j}"
            if block == "basic":
                convs = [(planes, inplanes, 3), (planes, planes, 3)]
            else:
                convs = [(planes, inplanes, 1), (planes, planes, 3), (planes * expansion, planes, 1)]
            for n, (cout, cin, k) in enumerate(convs, 1):
                keys += [(f"{p}.conv{n}.weight", (cout, cin, k, k)), *bn(f"{p}.bn{n}", cout)]
            if j == 0 and (stage > 0 or inplanes != planes * expansion):
                keys += [(f"{p}.downsample.0.weight", (planes * expansion, inplanes, 1, 1))]
                keys += bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    return keys + [("fc.weight", (1000, inplanes)), ("fc.bias", (1000,))]


def image_vit_keys(embed_dim: int, depth: int, img_size: int, patch_size: int, **_) -> list:
    """(key, shape) of a timm ``VisionTransformer`` (class token, 1000-class head), in its order."""
    d, n = embed_dim, (img_size // patch_size) ** 2
    keys = [("cls_token", (1, 1, d)), ("pos_embed", (1, 1 + n, d))]
    keys += [("patch_embed.proj.weight", (d, 3, patch_size, patch_size)), ("patch_embed.proj.bias", (d,))]
    for i in range(depth):
        b = f"blocks.{i}"
        keys += [(f"{b}.norm1.weight", (d,)), (f"{b}.norm1.bias", (d,))]
        keys += [(f"{b}.attn.qkv.weight", (3 * d, d)), (f"{b}.attn.qkv.bias", (3 * d,))]
        keys += [(f"{b}.attn.proj.weight", (d, d)), (f"{b}.attn.proj.bias", (d,))]
        keys += [(f"{b}.norm2.weight", (d,)), (f"{b}.norm2.bias", (d,))]
        keys += [(f"{b}.mlp.fc1.weight", (4 * d, d)), (f"{b}.mlp.fc1.bias", (4 * d,))]
        keys += [(f"{b}.mlp.fc2.weight", (d, 4 * d)), (f"{b}.mlp.fc2.bias", (d,))]
    return keys + [("norm.weight", (d,)), ("norm.bias", (d,)), ("head.weight", (1000, d)), ("head.bias", (1000,))]


# timm name pieces -> mmcv-transformer names of OpenMMLab's vit_base_patch16_224.pth (None: not in that file)
_VIT_BLOCK = {
    "norm1": "norms.0",
    "attn.qkv.weight": "attentions.0.attn.in_proj_weight",  # rows [q; k; v] in both layouts
    "attn.qkv.bias": "attentions.0.attn.in_proj_bias",
    "attn.proj": "attentions.0.attn.out_proj",
    "norm2": "norms.1",
    "mlp.fc1": "ffns.0.layers.0.0",
    "mlp.fc2": "ffns.0.layers.1",
}


def vit_to_mm(key: str) -> str | None:
    """The mmcv-layout name of a timm ViT key (None for the classifier head)."""
    if key.startswith("head."):
        return None
    if key.startswith("patch_embed.proj."):
        return key.replace("patch_embed.proj.", "patch_embed.projection.")
    if key.startswith("blocks."):
        _, i, rest = key.split(".", 2)
        for old, new in _VIT_BLOCK.items():
            if rest == old or rest.startswith(old + "."):
                return f"transformer_layers.layers.{i}.{new}{rest[len(old) :]}"
        raise KeyError(key)
    return key  # cls_token, pos_embed, norm.*


def filled(keys: list) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict(
        (k, torch.tensor(0) if k.endswith("num_batches_tracked") else fill(k, shape)) for k, shape in keys
    )


def crc(t: torch.Tensor) -> int:
    return zlib.crc32(t.detach().contiguous().numpy().tobytes())


def set_nested(cfg, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for p in path:
        cfg = cfg[p]
    cfg[last] = value


def build_backbone(name: str, overrides: dict, files: dict):
    cfg = model_config(name).backbone
    for key, value in overrides.items():
        set_nested(cfg, key, files.get(value, value))
    return MODELS.build(cfg)


@contextmanager
def no_random_init():
    """Make the scratch initialisers MMAction2's ResNet3d / pathway code calls next to a 2D load no-ops."""
    saved = [
        (m, n, getattr(m, n))
        for m in (mm_resnet3d, mm_slowfast)
        for n in ("kaiming_init", "constant_init")
        if hasattr(m, n)
    ]
    for m, n, _ in saved:
        setattr(m, n, lambda *a, **k: None)
    try:
        yield
    finally:
        for m, n, f in saved:
            setattr(m, n, f)


class LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def mm_not_loaded(messages: list[str]) -> set[str] | None:
    """The 2D keys MMAction2's ResNet loaders log as not loaded (None when no such message was logged)."""
    out = None
    for msg in messages:
        if "not loaded: {" in msg:
            out = (out or set()) | set(ast.literal_eval(msg.split("not loaded: ", 1)[1]))  # a printed set of str
    return out


def find_source(t: torch.Tensor, by_shape: dict, src2d: dict) -> str | None:
    """The 2D key whose tensor becomes ``t`` by a copy, a 2D->3D inflation (``w.unsqueeze(2).expand / kt``) or an
    inflation after zero-padding the input channels; None if none does."""
    s = tuple(t.shape)
    for k in by_shape.get(s, ()):
        if torch.equal(src2d[k], t):
            return k
    if t.dim() == 5:
        for shape2d, ks in by_shape.items():
            if len(shape2d) != 4 or shape2d[0] != s[0] or shape2d[2:] != s[3:] or shape2d[1] > s[1]:
                continue
            for k in ks:
                w = src2d[k]
                if shape2d[1] < s[1]:
                    w = torch.cat([w, w.new_zeros((s[0], s[1] - shape2d[1], *s[3:]))], dim=1)
                if torch.equal(w.unsqueeze(2).expand(s) / s[2], t):
                    return k
    return None


def run_case(name: str, image: str, overrides: dict, files: dict, src2d: dict, to_image_key: dict, log) -> dict:
    by_shape: dict[tuple, list[str]] = {}
    for k, v in src2d.items():
        if v.is_floating_point():
            by_shape.setdefault(tuple(v.shape), []).append(k)

    backbone = build_backbone(name, overrides, files)
    with torch.no_grad():
        for t in [*backbone.parameters(), *backbone.buffers()]:
            t.fill_(math.nan if t.is_floating_point() else -1)
    log.messages.clear()
    with no_random_init() if name.startswith("slowfast") else nullcontext():
        backbone.init_weights()
    not_loaded_log = mm_not_loaded(log.messages)

    loaded, left, used, total, problems = {}, [], set(), 0.0, []
    sd = backbone.state_dict()
    for k, t in sd.items():
        if t.is_floating_point():
            nan = torch.isnan(t)
            if nan.all():
                left.append(k)
                continue
            if nan.any():
                problems.append(f"{k}: partly NaN")
                left.append(k)
                continue
            src = find_source(t, by_shape, src2d)
            if src is None:
                problems.append(f"{k}: loaded but equals no 2D tensor")
            total += float(t.double().sum())
        else:
            if int(t) == -1:
                left.append(k)
                continue
            # integer counters: the source is the counter beside the 2D tensor the module's weight came from
            w_src = loaded.get(k.rsplit(".", 1)[0] + ".weight", {}).get("src")
            src = w_src.rsplit(".", 1)[0] + ".num_batches_tracked" if w_src else None
            if src not in src2d or int(src2d[src]) != int(t):
                problems.append(f"{k}: counter {int(t)} with no matching 2D counter")
        entry = {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."), "crc32": crc(t)}
        if not t.is_floating_point():
            entry["value"] = int(t)
        if src is not None:
            entry["src"] = to_image_key.get(src, src)
            used.add(src)
        loaded[k] = entry
    unused = [to_image_key.get(k, k) for k in src2d if k not in used]
    if image == "vit":
        unused = [k for k in to_image_key.values() if k not in {to_image_key[s] for s in used}]
    if not_loaded_log is not None and set(unused) != not_loaded_log:
        problems.append(f"unused_2d differs from MMAction2's log: {sorted(set(unused) ^ not_loaded_log)}")
    if not_loaded_log is None and image != "vit" and unused:
        problems.append("MMAction2 logged no unused 2D keys")

    # the ordinary way: no sentinel, no patched initialisers
    torch.manual_seed(0)
    plain = build_backbone(name, overrides, files)
    plain.init_weights()
    plain_sd = plain.state_dict()
    for k, e in loaded.items():
        if crc(plain_sd[k]) != e["crc32"]:
            problems.append(f"{k}: differs in the ordinary init")
    zero = [k for k in left if plain_sd[k].is_floating_point() and not plain_sd[k].any()]

    cfg = model_config(name).backbone
    out = {
        "mm_config": ALL[name][0],
        "backbone_type": cfg.type,
        "backbone_overrides": overrides,
        "image": image,
        "loaded": loaded,
        "left_at_init": left,
        "left_at_init_zero": zero,
        "unused_2d": unused,
        "sum": total,
    }
    if name.startswith("slowfast"):
        both = {**overrides, "fast_pathway.pretrained": RESNET_FILE}
        fast = build_backbone(name, both, files)
        try:
            fast.init_weights()  # SlowFast initialises the fast pathway first
            out["fast_pathway_error"] = None
        except Exception as e:  # noqa: BLE001  (recording what MMAction2 raises)
            out["fast_pathway_error"] = f"{type(e).__name__}: {e}"
        out["fast_pathway_overrides"] = both
    if problems:
        out["problems"] = problems
    return out


def main(only: list[str]) -> None:
    register_all_modules()
    logger = MMLogger.get_instance("inflation_fixture", log_level="INFO")
    for h in logger.handlers:
        h.setLevel(logging.ERROR)  # keep the console quiet; the capture below sees everything
    log = LogCapture()
    logger.addHandler(log)

    r50_keys = image_resnet_keys(50)
    vit_keys = image_vit_keys(**TINY_VIT)
    resnet = filled(r50_keys)
    vit = filled(vit_keys)
    vit_mm = OrderedDict((vit_to_mm(k), v) for k, v in vit.items() if vit_to_mm(k) is not None)
    vit_names = {vit_to_mm(k): k for k in vit if vit_to_mm(k) is not None}
    # timm's head never reaches the file: report it as unused under its own name
    vit_names_all = {**vit_names, **{k: k for k in vit if vit_to_mm(k) is None}}

    out = {
        "source": f"mmaction2 {mmaction.__version__}",
        "generator": "tests/assets/make_inflation_mmaction2.py",
        "image_resnet": {str(d): [[k, list(s)] for k, s in image_resnet_keys(d)] for d in (18, 50)},
        "image_vit": {**TINY_VIT, "keys": [[k, list(s)] for k, s in vit_keys]},
        "vit_to_mm": {k: vit_to_mm(k) for k, _ in vit_keys},
        "cases": {},
    }
    if only and OUT.exists():
        out["cases"] = json.loads(OUT.read_text())["cases"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {RESNET_FILE: f"{tmp}/resnet50.pth", VIT_FILE: f"{tmp}/vit.pth"}
        torch.save(resnet, files[RESNET_FILE])
        torch.save(vit_mm, files[VIT_FILE])
        for name, (image, overrides) in CASES.items():
            if only and name not in only:
                continue
            if image == "vit":
                src2d, names = vit_mm, vit_names_all
            else:
                src2d, names = resnet, {}
            case = run_case(name, image, overrides, files, src2d, names, log)
            out["cases"][name] = case
            print(
                f"{name}: loaded {len(case['loaded'])}, left_at_init {len(case['left_at_init'])} "
                f"(zero {len(case['left_at_init_zero'])}), unused_2d {len(case['unused_2d'])}"
                + (f", fast: {case['fast_pathway_error']}" if "fast_pathway_error" in case else "")
                + (f"\n  PROBLEMS: {case['problems']}" if "problems" in case else "")
            )
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main(sys.argv[1:])  # optionally: only these cases (the others are kept from the existing file)
