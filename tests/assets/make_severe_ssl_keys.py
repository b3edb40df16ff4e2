"""Write tests/assets/severe_ssl_keys.json: the state-dict layouts of the nine self-supervised R(2+1)D-18 checkpoints
that SEVERE (Thoker et al., "How Severe is Benchmark-Sensitivity in Video Self-Supervised Learning?", ECCV 2022,
github.com/fmthoker/SEVERE-BENCHMARK) evaluates: CtP, GDT, RSPNet, TCLR, Pretext-Contrast, MoCo, VideoMoCo, SeLaVi
and AVID-CMA.

No key list of the released files is published, so each layout is produced by building the pre-training network
with the method's own model code (checkouts at the commits in ``REPOS``; nothing of it is copied here) and naming
its tensors as the method's training script saves them (``module.`` where it saves a DataParallel /
DistributedDataParallel wrapper). Where SEVERE re-pretrained a method on the common backbone (RSPNet, AVID-CMA) or
changed it (TCLR), the method's wrapper is built around torchvision's ``r2plus1d_18``, with the backbone names
SEVERE's loader (``action_recognition/backbones.py``) expects; the ``notes`` of each entry say what is read off
code and what is inferred. Usage::

    mkdir -p /tmp/severe_src && cd /tmp/severe_src
    # one directory per repository, named as in REPOS (git archive <commit> | tar -x -C <name>), and an
    # unpacked torchvision 0.28 wheel under tv/ (pip download --no-deps torchvision==0.28.0; unzip -d tv)
    .venv/bin/python tests/assets/make_severe_ssl_keys.py /tmp/severe_src

Environment: torch 2.13 (CPU) and numpy only. torchvision's compiled ops need not match the installed torch:
only ``models/video/resnet.py`` and ``models/resnet.py`` are imported, against the stubs of
``make_torchvision_fixture.py``; the methods' old-style calls (``r2plus1d_18(pretrained=False)``,
``resnet._resnet(arch, block, layers, pretrained, progress)``) are forwarded to them. Imports that cannot load here
and shape nothing are stubbed too: mmcv's init helpers and ``RoIAlign`` (CtP; no parameters), ``torchsummary``
(TCLR), ``np.int`` (removed from numpy, used by CtP's backbone); ``Tensor.cuda`` returns the tensor while
VideoMoCo's ``MoCo`` is built (it moves a non-buffer counter to the GPU in ``__init__``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_torchvision_fixture as tvfix  # noqa: E402  (beside this script)

ASSETS = Path(__file__).resolve().parent
REPOS = {
    "SEVERE-BENCHMARK": ("fmthoker/SEVERE-BENCHMARK", "2f99365c446d2721261dc56d91c4fb469f042cbb"),
    "CtP": ("microsoft/CtP", "847b8fc1710d21438352de0f291b841b36ed3d2b"),
    "tubelet-contrast": ("fmthoker/tubelet-contrast", "5f9a715797ae2b1e8f4c274732307aa135807795"),
    "GDT": ("facebookresearch/GDT", "873e630fa3a11d7df1415f2ccd309023af8e1bed"),
    "RSPNet": ("PeihaoChen/RSPNet", "2958779807005ceb06eff49e10fb0d69280f681d"),
    "TCLR": ("DAVEISHAN/TCLR", "850efa942e2343837d36f9e5036311087b1b4c91"),
    "Pretext-Contrastive-Learning": (
        "BestJuly/Pretext-Contrastive-Learning",
        "bc46d88cfefa97974d0bbfc78bdc81c6c3aae3a9",
    ),
    "VideoMoCo": ("tinapan-pt/VideoMoCo", "42e069aef6f8952fa67b87ba5269851eedd834c3"),
    "selavi": ("facebookresearch/selavi", "33d2b2d7a67a66a8b924b66266f34d70a28c2395"),
    "AVID-CMA": ("facebookresearch/AVID-CMA", "4538e404c79eb1b7459122a31508d918038705fd"),
}


def _ref(name: str, path: str) -> str:
    repo, commit = REPOS[name]
    return f"{repo}@{commit[:10]}:{path}"


def _stub(name: str, package: bool = False, **attrs) -> types.ModuleType:
    mod = sys.modules.get(name) or types.ModuleType(name)
    if package and not hasattr(mod, "__path__"):
        mod.__path__ = []
    mod.__dict__.update(attrs)
    sys.modules[name] = mod
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, mod)
    return mod


def _load(name: str, path: Path) -> types.ModuleType:
    """The file at ``path`` imported as module ``name`` (its package must already be in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, mod)
    return mod


@contextlib.contextmanager
def _on_path(directory: Path, *fresh: str):
    """``directory`` first on ``sys.path``; the top-level modules named in ``fresh`` forgotten before and after (the
    repositories reuse names such as ``models`` and ``moco``)."""

    def forget():
        for name in list(sys.modules):
            if name.split(".")[0] in fresh:
                del sys.modules[name]

    forget()
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        forget()


def install_torchvision(tv_root: Path) -> types.SimpleNamespace:
    """torchvision 0.28's video and image ResNets against stubs, with the old call signatures the methods use."""
    video = tvfix.load_resnet(tv_root / "torchvision/models/video/resnet.py")  # installs the stubs
    _stub("torchvision.transforms._presets", ImageClassification=object)
    _stub("torchvision.models._meta", _IMAGENET_CATEGORIES=[f"class_{i}" for i in range(1000)])
    image = _load("torchvision.models.resnet", tv_root / "torchvision/models/resnet.py")

    def r2plus1d_18(pretrained=False, progress=True, **kwargs):  # torchvision <= 0.12 signature
        assert not pretrained
        return video.r2plus1d_18(weights=None, **kwargs)

    def _resnet(arch, block, layers, pretrained, progress, **kwargs):  # torchvision <= 0.12 signature
        assert not pretrained
        return image.ResNet(block, layers, **kwargs)

    def resnet18(pretrained=False, progress=True, **kwargs):
        assert not pretrained
        return image.ResNet(image.BasicBlock, [2, 2, 2, 2], **kwargs)

    _stub("torchvision.models.video", package=True, r2plus1d_18=r2plus1d_18)
    image._resnet = _resnet
    _stub(
        "torchvision.models",
        package=True,
        resnet18=resnet18,
        resnet=image,
        video=sys.modules["torchvision.models.video"],
    )
    _stub("torchvision.models.utils", load_state_dict_from_url=None)  # TCLR's r3d.py imports it
    sys.modules["torchvision"].models = sys.modules["torchvision.models"]
    return types.SimpleNamespace(r2plus1d_18=r2plus1d_18)


def _entry(sd: dict[str, torch.Tensor], *, file: str, wrapper: str, extra: list[str], source: str, notes: str) -> dict:
    return {
        "file": file,
        "wrapper": wrapper,  # the top-level key holding the state dict ("" for a bare state dict)
        "extra": extra,  # the other top-level entries the training script writes (not tensors of the network)
        "source": source,
        "notes": notes,
        "keys": [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()],
    }


def _prefixed(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in sd.items()}


def ctp(src: Path) -> dict:
    np.int = int  # CtP's BaseResNet3D casts its channel table with np.int
    _stub("mmcv", package=True)
    _stub("mmcv.cnn", kaiming_init=lambda *a, **k: None, constant_init=lambda *a, **k: None,
          normal_init=lambda *a, **k: None)  # fmt: skip
    _stub("mmcv.runner", load_state_dict=None)
    _stub("mmcv.ops", package=True)
    _stub("mmcv.ops.roi_align", RoIAlign=lambda *a, **k: nn.Identity())  # no parameters
    _stub("pyvrl", package=True)
    _stub("pyvrl.builder", BACKBONES=types.SimpleNamespace(register_module=lambda: lambda cls: cls))
    for pkg in ("pyvrl.models", "pyvrl.models.backbones", "pyvrl.models.pretraining", "pyvrl.models.pretraining.ctp"):
        _stub(pkg, package=True)
    # SEVERE's CtP weights load into torchvision's r2plus1d_18, whose second factorised conv of a stage's first block
    # is as wide as the first: the SEVERE authors' pyvrl fork (tubelet-contrast) builds that; CtP's own r3d.py sizes
    # each factorised conv on its own (288 vs 230 channels in layer2.0.conv2), which torchvision cannot load.
    bb = src / "tubelet-contrast/pyvrl/models/backbones"
    _load("pyvrl.models.backbones.base_backbone", bb / "base_backbone.py")
    r3d = _load("pyvrl.models.backbones.r3d", bb / "r3d.py")
    head = _load("pyvrl.models.pretraining.ctp.ctp_head", src / "CtP/pyvrl/models/pretraining/ctp/ctp_head.py")
    # configs/ctp/r3d_18_kinetics/pretraining.py (r2plus1d_18_kinetics changes only the backbone type)
    backbone = r3d.R2Plus1D(
        depth=18,
        num_stages=4,
        stem=dict(temporal_kernel_size=3, temporal_stride=1, in_channels=3, with_pool=False),
        down_sampling=[False, True, True, False],
        down_sampling_temporal=[False, True, True, True],
        channel_multiplier=1.0,
        bottleneck_multiplier=1.0,
        with_bn=True,
        zero_init_residual=False,
    )
    ctp_head = head.CtPHead(in_channels=512, in_temporal_size=2, hidden_channels=512, roi_feat_size=5,
                            spatial_stride=8, num_pred_frames=16, target_means=(0.0,) * 4,
                            target_stds=(0.8, 0.8, 0.04, 0.04))  # fmt: skip
    sd = {**_prefixed(backbone.state_dict(), "backbone."), **_prefixed(ctp_head.state_dict(), "head.")}
    return _entry(
        sd,
        file="ctp/snellius_r2p1d18_ctp_k400_epoch_90.pth",
        wrapper="state_dict",
        extra=["meta", "optimizer"],
        source=f"CtP model = backbone + head: backbone {_ref('tubelet-contrast', 'pyvrl/models/backbones/r3d.py')} "
        f"R2Plus1D with {_ref('CtP', 'configs/ctp/r3d_18_kinetics/pretraining.py')}; head "
        f"{_ref('CtP', 'pyvrl/models/pretraining/ctp/ctp_head.py')} CtPHead; saved by mmcv's save_checkpoint "
        "(unwrapped model, {'meta', 'state_dict', 'optimizer'})",
        notes="SEVERE (backbones.py load_ctp_checkpoint) reads checkpoint['state_dict'], strips 'backbone.' and "
        "renames pyvrl's names to torchvision's; its file is a re-pretraining on Snellius (file name). The widths "
        "are torchvision's (the fork's), since SEVERE loads the weights into r2plus1d_18.",
    )


def gdt(src: Path, tv) -> dict:
    with _on_path(src / "GDT", "model", "src"):
        model = importlib.import_module("model")
        # scripts/pretrain_gdt_k400.sh: --model av_gdt --vid_base_arch r2plus1d_18 --aud_base_arch resnet9
        # --use_mlp True (main_gdt.py builds GDT(..., use_mlp=True, num_classes=256 default))
        net = model.GDT(vid_base_arch="r2plus1d_18", aud_base_arch="resnet9", pretrained=False, norm_feat=True,
                        use_mlp=True, num_classes=256)  # fmt: skip
    return _entry(
        net.state_dict(),
        file="gdt/gdt_K400.pth",
        wrapper="model",
        extra=["optimizer", "lr_scheduler", "epoch", "args"],
        source=f"{_ref('GDT', 'model.py')} GDT(vid_base_arch='r2plus1d_18', aud_base_arch='resnet9', use_mlp=True) "
        f"as in {_ref('GDT', 'scripts/pretrain_gdt_k400.sh')}; saved by utils.py save_checkpoint "
        "({'model': model.module.state_dict(), ...})",
        notes="GDT's video network is its own copy of torchvision's r2plus1d_18 (src/vmz.py) with fc replaced by "
        "Identity. SEVERE drops audio_network and mlp_a and strips 'video_network.base.'. The file's 'args' entry is "
        "an argparse.Namespace.",
    )


class _BaseNetworkR21D(nn.Module):
    """An R(2+1)D-18 encoder for RSPNet's wrappers whose torchvision layers sit in ``base_network`` (indices 0-5:
    stem, layer1-4, pool), as SEVERE's RSPNet loader expects; ``get_feature`` is what MultiTaskWrapper calls and
    ``linear`` the classifier the wrapper builds it with (``num_classes=1``), as RSPNet's ``r2plus1d-vcop`` arch."""

    def __init__(self, tv, num_classes: int = 1) -> None:
        super().__init__()
        self.base_network = nn.Sequential(*list(tv.r2plus1d_18().children())[:-1])
        self.linear = nn.Linear(512, num_classes)

    def get_feature(self, x):
        return self.base_network[:5](x)


def rspnet(src: Path, tv) -> dict:
    with _on_path(src / "RSPNet", "moco"):
        _stub("moco", package=True)  # its __init__.py needs pyhocon and RSPNet's model registry, unused here
        wrapper = _load("moco.split_wrapper", src / "RSPNet/moco/split_wrapper.py")
        builder = _load("moco.builder_diffspeed_diffloss", src / "RSPNet/moco/builder_diffspeed_diffloss.py")

        def model_class(num_classes=128):  # moco/__init__.py build_moco_diffloss
            def encoder(num_classes):
                return _BaseNetworkR21D(tv, num_classes)

            return wrapper.MultiTaskWrapper(encoder, num_classes, finetune=False, fc_type="linear", groups=1)

        # config/pretrain/moco-train-base.jsonnet: dim 128, k 16384, m 0.999, t 0.07, diff_speed [2], fc_type linear
        net = builder.MoCoDiffLossTwoFc(model_class, dim=128, K=16384, m=0.999, T=0.07, diff_speed=[2])
    return _entry(
        net.state_dict(),
        file="rspnet/snellius_checkpoint_epoch_200.pth.tar",
        wrapper="model",
        extra=["epoch", "arch", "best_loss", "optimizer", "scheduler"],
        source=f"{_ref('RSPNet', 'moco/builder_diffspeed_diffloss.py')} MoCoDiffLossTwoFc around "
        f"{_ref('RSPNet', 'moco/split_wrapper.py')} MultiTaskWrapper (fc_type linear), settings of "
        f"{_ref('RSPNet', 'config/pretrain/moco-train-base.jsonnet')}; saved by pretrain.py "
        "({'model': model.module.state_dict(), ...})",
        notes="SEVERE re-pretrained RSPNet with torchvision's R(2+1)D-18 (RSPNet's own r2plus1d-vcop is an R(2+1)D-10, "
        "models/r2plus1d_vcop.py); that code is not published. From SEVERE's loader (load_rspnet_checkpoint): the "
        "backbone sits at encoder_q.encoder.base_network.{0: stem, 1-4: layer1-4}. The encoder class around it is a "
        "reconstruction: its classifier ('linear', as RSPNet's r2plus1d-vcop arch) is an assumption; the loader drops "
        "encoder_q.{fc.,linear,head,new_fc,fc8,encoder_fuse}* as RSPNet's finetune.py does.",
    )


def tclr(src: Path, tv) -> dict:
    _stub("torchsummary", summary=None)
    with _on_path(src / "TCLR/tclr_pretraining", "r3d", "r3d_prp", "mlp", "model"):
        r3d = importlib.import_module("r3d")
        mlp = importlib.import_module("mlp")
        backbone = r3d.r2plus1d_18(pretrained=False, progress=False)
        # model.py build_r3d_backbone's layer4 change, applied to R(2+1)D-18 as SEVERE's load_backbone does for 'tclr'
        backbone.layer4[0].conv1[0] = nn.Conv3d(256, 512, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=(2, 1, 1),
                                                dilation=(2, 1, 1), bias=False)  # fmt: skip
        backbone.layer4[0].downsample[0] = nn.Conv3d(256, 512, kernel_size=(1, 1, 1), stride=(1, 2, 2), bias=False)
        net = nn.Sequential(backbone, mlp.mlp())
    return _entry(
        _prefixed(net.state_dict(), "module."),
        file="tclr/rpd18kin400.pth",
        wrapper="state_dict",
        extra=["epoch", "optimizer", "learning_rate", "amp_scaler"],
        source=f"{_ref('TCLR', 'tclr_pretraining/model.py')} build_r3d_mlp (nn.Sequential(backbone, mlp) in "
        f"nn.DataParallel) with {_ref('TCLR', 'tclr_pretraining/r3d.py')} r2plus1d_18 as backbone and the layer4 "
        f"change of build_r3d_backbone / {_ref('SEVERE-BENCHMARK', 'action_recognition/backbones.py')}; saved by "
        "train_gen_all_step.py ({'epoch', 'state_dict', 'optimizer', 'learning_rate', 'amp_scaler'})",
        notes="TCLR's repository builds only R3D-18 this way; that the R(2+1)D-18 file has the same layout comes from "
        "SEVERE, which applies the same layer4 change to r2plus1d_18 before loading it (layer4.0.conv1.0: one "
        "3x3x3 conv, temporal stride 1, dilation 2; layer4.0.downsample.0: temporal stride 1). TCLR's r3d.py has no "
        "fc. 'amp_scaler' is a pickled GradScaler object.",
    )


def pretext_contrast(src: Path, tv) -> dict:
    with _on_path(src / "Pretext-Contrastive-Learning", "models"):
        network = importlib.import_module("models.network")
        net = network.PC_VideoNet(base_network="r21d", feature_size=512, modality="res", head=True, proj_dim=128)
    return _entry(
        _prefixed(net.state_dict(), "module."),
        file="pretext_contrast/pcl_r2p1d_res_ssl.pt",
        wrapper="",
        extra=[],
        source=f"{_ref('Pretext-Contrastive-Learning', 'models/network.py')} PC_VideoNet(base_network='r21d') "
        "(torchvision r2plus1d_18 children[:-1] as base_network) in nn.DataParallel; a bare state dict, as "
        "train_vcp_contrast.py saves its models",
        notes="SEVERE's loader (load_pretext_contrast_checkpoint) reads a bare state dict and maps "
        "module.base_network.0 -> stem, module.base_network.N -> layerN. The K400 R(2+1)D training script is not in "
        "the repository; the heads (projector, fc_seq, fc_speed) are PC_VideoNet's; PCLNet (models/pcl_net.py) would "
        "have fc + projector instead.",
    )


def _moco(src: Path, tv, method: str) -> dict:
    with _on_path(src / "VideoMoCo", "moco"):
        builder = importlib.import_module("moco.builder")
        cuda = torch.Tensor.cuda
        torch.Tensor.cuda = lambda self, *a, **k: self  # MoCo.__init__ moves a counter (not a buffer) to the GPU
        try:  # train.py defaults: --moco-dim 128 --moco-k 65536, no --mlp
            net = builder.MoCo(tv.r2plus1d_18, dim=128, K=65536, m=0.999, T=0.07, mlp=False)
        finally:
            torch.Tensor.cuda = cuda
    file = {"moco": "moco/checkpoint_0199.pth.tar", "videomoco": "video_moco/r2plus1D_checkpoint_0199.pth.tar"}
    return _entry(
        _prefixed(net.state_dict(), "module."),
        file=file[method],
        wrapper="state_dict",
        extra=["epoch", "arch"],
        source=f"{_ref('VideoMoCo', 'moco/builder.py')} MoCo(torchvision r2plus1d_18, dim=128, K=65536) in "
        f"DistributedDataParallel (netD of {_ref('VideoMoCo', 'train.py')}, saved as {{'epoch', 'arch', "
        "'state_dict'})",
        notes="MoCo and VideoMoCo come from the same repository and builder (VideoMoCo adds a generator, saved in a "
        "separate netG file); SEVERE loads both with the same code (drop module.encoder_k., strip module.encoder_q., "
        "drop fc.). With --mlp the projection is fc.0 / fc.2 instead of fc.",
    )


def selavi(src: Path, tv) -> dict:
    with _on_path(src / "selavi", "model"):
        model = importlib.import_module("model")
        # README model zoo: Kinetics, 400 clusters, 10 heads; scripts/master.sh: r2plus1d_18, resnet9, use_mlp True
        net = model.load_model(vid_base_arch="r2plus1d_18", aud_base_arch="resnet9", pretrained=False, norm_feat=True,
                               use_mlp=True, num_classes=400, headcount=10)  # fmt: skip
    return _entry(
        _prefixed(net.state_dict(), "module."),
        file="selavi/selavi_kinetics.pth",
        wrapper="model",
        extra=["epoch", "dist", "optimizer", "selflabels"],
        source=f"{_ref('selavi', 'model.py')} load_model(r2plus1d_18, resnet9, use_mlp=True, num_classes=400, "
        f"headcount=10) in DistributedDataParallel; saved by {_ref('selavi', 'main.py')} ({{'epoch', 'dist', 'model', "
        "'optimizer', 'selflabels'}})",
        notes="README: the Kinetics model has 400 clusters and 10 heads (mlp_v0..9, mlp_a0..9); a single-head model "
        "has mlp_v / mlp_a. SyncBatchNorm does not change the names. SEVERE keeps module.video_network.base.* only.",
    )


def avid_cma(src: Path, tv) -> dict:
    with _on_path(src / "AVID-CMA", "models"):
        wrapper = importlib.import_module("models.av_wrapper")
        audio = importlib.import_module("models.audio")
        video = tv.r2plus1d_18()
        video.fc = nn.Identity()  # AV_Wrapper projects the pooled 512-d features (video_model.out_dim)
        video.out_dim = 512
        # configs/main/avid-cma/kinetics/InstX-N1024-PosW-N64-Top32.yaml: Conv2D depth 10, proj_dim [512, 512, 128]
        net = wrapper.AV_Wrapper(video, audio.Conv2D(depth=10), proj_dim=[512, 512, 128])
    return _entry(
        _prefixed(net.state_dict(), "module."),
        file="avid_cma/avid_cma_ckpt-ep20.pth.tar",
        wrapper="model",
        extra=["epoch", "optimizer", "train_criterion"],
        source=f"{_ref('AVID-CMA', 'models/av_wrapper.py')} AV_Wrapper with the settings of "
        f"{_ref('AVID-CMA', 'configs/main/avid-cma/kinetics/InstX-N1024-PosW-N64-Top32.yaml')}, torchvision "
        "r2plus1d_18 as video_model; saved by utils/main_utils.py CheckpointManager ({'epoch', 'model', "
        "'optimizer', 'train_criterion'})",
        notes="SEVERE re-pretrained AVID-CMA with torchvision's R(2+1)D-18 (AVID-CMA's own R2Plus1D has a full 3D stem "
        "and other names, models/video.py); that code is not published. From SEVERE's loader (load_avid_cma_"
        "checkpoint): module.video_model.* in torchvision names. That the video model has no fc (pooled features "
        "into video_proj) is inferred from AV_Wrapper, not known.",
    )


def main(src: Path) -> None:
    torch.manual_seed(0)
    tv = install_torchvision(src / "tv")
    methods = {
        "ctp": ctp(src),
        "gdt": gdt(src, tv),
        "rspnet": rspnet(src, tv),
        "tclr": tclr(src, tv),
        "pretext_contrast": pretext_contrast(src, tv),
        "moco": _moco(src, tv, "moco"),
        "videomoco": _moco(src, tv, "videomoco"),
        "selavi": selavi(src, tv),
        "avid_cma": avid_cma(src, tv),
    }
    out = {
        "description": "state-dict key names, shapes and dtypes of SEVERE's nine self-supervised R(2+1)D-18 "
        "checkpoints, built with each method's model code (tests/assets/make_severe_ssl_keys.py)",
        "torchvision": "0.28.0 models/video/resnet.py r2plus1d_18, models/resnet.py (stubbed package)",
        "severe_loader": _ref("SEVERE-BENCHMARK", "action_recognition/backbones.py"),
        "methods": methods,
    }
    counts = ", ".join(f"{m} {len(e['keys'])}" for m, e in methods.items())
    if methods["videomoco"]["keys"] == methods["moco"]["keys"]:  # one builder: the list is stored once
        methods["videomoco"]["keys"] = "moco"
    path = ASSETS / "severe_ssl_keys.json"
    path.write_text(_dumps(out) + "\n")
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB): {counts}")


def _dumps(obj, indent: str = "") -> str:
    """JSON with one line per key entry (compact lists inside), so the file diffs well and stays small."""
    if isinstance(obj, dict):
        inner = indent + " "
        items = [f"{inner}{json.dumps(k)}: {_dumps(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], list):
        inner = indent + " "
        return "[\n" + ",\n".join(inner + json.dumps(x, separators=(",", ":")) for x in obj) + "\n" + indent + "]"
    return json.dumps(obj)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIR (checkouts named as in REPOS, torchvision under DIR/tv)")
    main(Path(sys.argv[1]))
