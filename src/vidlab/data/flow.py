"""Optical-flow input as MMAction2 has it: extraction to x/y JPEG pairs, reading, stacking and flipping.

What MMAction2 1.2.0 does, and what this module reproduces (paths relative to the ``mmaction`` package and to the
MMAction2 / open-mmlab denseflow repositories):

* **Storage.** A video of ``n`` frames gives ``n - 1`` flow frames, flow ``i`` (1-based) from frame ``i - 1`` to frame
  ``i`` (0-based), each stored as two grayscale 8-bit images, one per component: ``x_00001.jpg`` / ``y_00001.jpg``
  for ``tools/misc/flow_extraction.py`` (``flow_tmpl='{}_{:05d}.jpg'``, ``--start-idx`` 1, lines 103-116, 150-159)
  and the TSN flow config's ``filename_tmpl='{}_{:05d}.jpg'``; ``flow_x_00000.jpg`` / ``flow_y_00000.jpg`` for
  denseflow, which ``tools/data/build_rawframes.py`` runs with ``-b=20 -s=1`` (lines 82-101; read them with
  ``filename_tmpl='flow_{}_{:05d}.jpg'``; the current denseflow numbers them from 0, ``src/common.cpp``
  ``writeFlowImages``, the dataset READMEs show 1-based names from older builds). A component ``v`` in pixels is
  clipped to ``[-bound, bound]`` (bound 20) and mapped linearly onto 0..255: denseflow rounds to nearest
  (``src/common.cpp`` ``convertFlowToImage``: ``cvRound(255 * (v + bound) / (2 * bound))``), ``flow_extraction.py``
  truncates (``flow_to_img``, lines 10-25, float32 arithmetic). The method is TV-L1 by default in both
  (``cv2.optflow.DualTVL1OpticalFlow_create()`` with OpenCV's defaults; the dataset scripts call build_rawframes.py
  with ``--flow-type tvl1``, denseflow's own default is ``tvl1``); ``flow_extraction.py``'s alternative is
  Farneback with ``(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)``
  (lines 41-59), on grayscale frames (OpenCV's ``COLOR_BGR2GRAY`` of its BGR frames; vidlab converts its RGB frames
  with ``COLOR_RGB2GRAY``, the same luma). The rawframe list of a flow folder gives the number of flow frames
  (``build_file_list.py`` counts the ``flow_x_`` files).
* **Reading.** ``RawFrameDecode`` with ``modality='Flow'`` (``datasets/transforms/loading.py`` 1433-1442) reads, for
  each frame index, ``filename_tmpl.format('x', i)`` and ``format('y', i)`` as grayscale and stacks them
  ``np.stack([x, y], axis=-1)``: one ``(H, W, 2)`` frame per index, x first. Indices are ``SampleFrames``' positions
  plus ``start_index``, 1 for ``RawframeDataset`` (``datasets/rawframe_dataset.py``), so the list's ``total_frames``
  is the flow-frame count and files are 1-based. (MMAction2 0.x appended x and y as two separate frames instead;
  PR #2631, commit 96d20d38, 2023-08, changed it to the stacked layout.)
* **Stacking.** The 0.x ``FormatShape('NCHW_Flow')`` is gone in 1.2.0 (``datasets/transforms/formatting.py``
  231-235 rejects it); ``FormatShape('NCHW')`` with ``results['modality'] == 'Flow'`` (302-311) transposes the
  ``(M, H, W, 2)`` frames to ``(M, 2, H, W)`` and reshapes to ``(M / clip_len, 2 * clip_len, H, W)``: the
  ``clip_len`` consecutive flow frames of a clip become the channels ``x_0, y_0, x_1, y_1, ...`` (interleaved, time
  major), one 2D input per (crop, clip), crop-major. This is also what 0.x's ``NCHW_Flow`` produced.
* **Flip.** ``Flip`` with ``modality='Flow'`` asserts a horizontal flip (``datasets/transforms/processing.py``
  880-882), mirrors every image and applies ``mmcv.iminvert`` (``255 - v``) to every second image of the list
  (828-836): written for 0.x's ``[x_0, y_0, x_1, y_1, ...]`` list, that inverts the x components, which is what a
  mirror does to horizontal motion. On 1.2.0's stacked ``(H, W, 2)`` frames the same loop inverts both components of
  frames 0, 2, 4, ... and neither of frames 1, 3, ... (PR #2631 did not update it); :func:`flip_flow` implements the
  intended operation (the fixture records both).
* **Recipes.** ``configs/recognition/tsn/tsn_imagenet-pretrained-r50_8xb32_5x1x3-110e_kinetics400-flow.py``:
  ``clip_len = 5``, ResNet-50 with ``in_channels=2 * clip_len``, ``mean=[128, 128] * clip_len``,
  ``std=[128, 128] * clip_len``, ``format_shape='NCHW'``; ``SampleFrames(clip_len=5, frame_interval=1,
  num_clips=3)`` for training and validation, 25 clips with ``TenCrop(224)`` for testing; ``Resize((-1, 256))``,
  ``RandomResizedCrop``, ``Resize((224, 224))``, ``Flip(0.5)``; SGD lr 0.005, 110 epochs, steps at 70 and 100,
  gradient clipping 40. The 3D recipe is SlowOnly, not I3D
  (``configs/recognition/slowonly/slowonly_r50_8xb16-16x4x1-256e_kinetics400-flow.py``): ``in_channels=2``,
  ``mean=[128, 128]``, ``std=[128, 128]``, ``NCTHW``, ``SampleFrames(16, 4, 1)``; there is no I3D flow config.
  Flow values are not rescaled when frames are resized (0.x's ``Normalize(adjust_magnitude=...)`` is gone).

In vidlab a flow sample travels through the pipeline like an RGB one, as uint8 ``(N, H, W, 2)`` frames (x, y as two
channels); geometric transforms work unchanged, and ``Flip`` must call :func:`flip_flow` when
``results["modality"] == "Flow"``. ``input_format: NCHW_Flow`` then stacks each clip's ``clip_len`` frames into
``2 * clip_len`` channels (:func:`stack_flow`), and the views hold ``num_segments`` such stacks, so a TSN with
``in_channels = 2 * clip_len`` sees MMAction2's input; ``NCTHW`` with 2 channels is the SlowOnly recipe.

OpenCV is an optional dependency, needed only to extract flow (``pip install opencv-python-headless``; TV-L1 needs
``opencv-contrib-python-headless``). Reading, stacking and flipping need only Pillow, numpy and torch.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from vidlab.data.decode import VideoDecodeError, VideoReader
from vidlab.errors import InputError, MissingDependencyError

__all__ = [
    "FLOW_TMPL",
    "METHODS",
    "check_flow_tmpl",
    "dequantize_flow",
    "extract_flow",
    "extract_flow_list",
    "flip_flow",
    "quantize_flow",
    "read_flow_frames",
    "stack_flow",
]

logger = logging.getLogger(__name__)

#: MMAction2's flow file names: ``x_00001.jpg``, ``y_00001.jpg`` (denseflow's: ``flow_{}_{:05d}.jpg``)
FLOW_TMPL = "{}_{:05d}.jpg"
METHODS = ("farneback", "tvl1")
ROUNDINGS = ("round", "floor")
_META = ".vidlab_flow.json"  # written last into a finished flow folder: the settings it was extracted with
_CHUNK = 32  # frames decoded at a time
# pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags: MMAction2's tools/misc/flow_extraction.py
_FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)

Array = TypeVar("Array", np.ndarray, torch.Tensor)


# --------------------------------------------------------------------------- quantization


def _check_bound(bound: float) -> float:
    if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0:
        raise InputError(f"bound must be a positive number of pixels, got {bound!r}")
    return float(bound)


def quantize_flow(flow: np.ndarray, bound: float = 20.0, rounding: str = "round") -> np.ndarray:
    """Flow in pixels -> the uint8 values MMAction2's flow images store.

    Each component is clipped to ``[-bound, bound]`` and mapped to ``255 * (v + bound) / (2 * bound)``.

    Args:
        flow: Float array ``(..., 2)`` (x, y displacement in pixels), e.g. OpenCV's ``(H, W, 2)``.
        bound: The clipping bound in pixels (20 in MMAction2's tools).
        rounding: ``"round"``: to nearest, ties to even, in float64 (denseflow's ``cvRound``, the files of
            ``build_rawframes.py``); ``"floor"``: truncated, in float32 (``flow_extraction.py``'s ``flow_to_img``).

    Returns:
        uint8 array of the same shape.

    Raises:
        ValueError: The last axis is not 2, a non-positive bound or an unknown rounding.
    """
    bound = _check_bound(bound)
    flow = np.asarray(flow)
    if flow.ndim == 0 or flow.shape[-1] != 2:
        raise InputError(f"flow must be (..., 2) (x, y components), got shape {flow.shape}")
    if rounding == "round":
        v = np.clip(flow.astype(np.float64), -bound, bound)
        return np.rint(255.0 * (v + bound) / (2.0 * bound)).astype(np.uint8)
    if rounding == "floor":
        v = np.clip(flow.astype(np.float32), np.float32(-bound), np.float32(bound))
        return ((v + np.float32(bound)) * np.float32(255.0 / (2.0 * bound))).astype(np.uint8)
    raise InputError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")


def dequantize_flow(values: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """The inverse map of :func:`quantize_flow`: ``q * 2 * bound / 255 - bound`` pixels, float32.

    Inside the bound the round trip is off by at most ``bound / 255`` pixels with ``rounding="round"`` (twice that
    with ``"floor"``); values beyond the bound come back as the bound.
    """
    bound = _check_bound(bound)
    q = np.asarray(values)
    if q.dtype != np.uint8:
        raise TypeError(f"quantized flow must be uint8, got {q.dtype}")
    return q.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)


# --------------------------------------------------------------------------- reading, stacking, flipping


def check_flow_tmpl(tmpl: str) -> None:
    """Raise a clear error unless ``tmpl`` takes the direction (``'x'``/``'y'``) and the frame index."""
    try:
        names = {tmpl.format(d, i) for d in "xy" for i in (1, 2)} if isinstance(tmpl, str) else set()
        ok = len(names) == 4
    except (IndexError, KeyError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"filename_tmpl {tmpl!r} does not name flow files: it must take the direction ('x' or 'y') and the "
            f"frame index, e.g. '{FLOW_TMPL}' (MMAction2, vidlab data flow) or 'flow_{{}}_{{:05d}}.jpg' (denseflow)"
        )


def _read_gray(path: Path, short_side: int | None) -> np.ndarray:
    from PIL import Image  # only frame folders need Pillow

    try:
        with Image.open(path) as im:
            im = im if im.mode == "L" else im.convert("L")
            if short_side:
                w, h = im.size
                s = short_side / min(w, h)
                im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
            return np.asarray(im)
    except (OSError, ValueError) as e:
        raise VideoDecodeError(str(path), f"cannot read flow frame: {e}") from e


def read_flow_frames(
    frame_dir: str | os.PathLike,
    indices: np.ndarray,
    tmpl: str = FLOW_TMPL,
    short_side: int | None = None,
) -> np.ndarray:
    """The flow frames at ``indices`` of a flow folder, as MMAction2's ``RawFrameDecode`` gives them.

    Args:
        frame_dir: Folder of x/y image pairs.
        indices: Frame numbers as in the file names (``start_index`` already added; 1-based for MMAction2's files).
        tmpl: File-name template taking the direction and the index.
        short_side: If set, each image is resized (bilinear) so its shorter side has this length; the values are
            not rescaled (as MMAction2).

    Returns:
        uint8 ``(N, H, W, 2)``: channel 0 is the x component, channel 1 the y component.

    Raises:
        VideoDecodeError: A missing or unreadable image, or x and y images of different sizes (names the file).
        ValueError: A template that does not name flow files.
    """
    check_flow_tmpl(tmpl)
    cache: dict[int, np.ndarray] = {}
    out = []
    for idx in np.asarray(indices).reshape(-1).tolist():
        if idx not in cache:
            x = _read_gray(Path(frame_dir) / tmpl.format("x", idx), short_side)
            y = _read_gray(Path(frame_dir) / tmpl.format("y", idx), short_side)
            if x.shape != y.shape:
                path = Path(frame_dir) / tmpl.format("y", idx)
                raise VideoDecodeError(
                    str(path), f"flow y image is {y.shape[::-1]} (w, h), its x image {x.shape[::-1]}"
                )
            cache[idx] = np.stack([x, y], axis=-1)
        out.append(cache[idx])
    if not out:
        return np.empty((0, 0, 0, 2), np.uint8)
    return np.stack(out)


def _as_tensor(imgs: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    if isinstance(imgs, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(imgs)), True
    return imgs, False


def stack_flow(imgs: Array, clip_len: int) -> Array:
    """Stacks each clip's ``clip_len`` flow frames into ``2 * clip_len`` channels, in MMAction2's order.

    ``(..., N, H, W, 2) -> (..., N / clip_len, H, W, 2 * clip_len)``, channel ``2 * t + d`` being component ``d``
    (0: x, 1: y) of the clip's frame ``t``: ``x_0, y_0, x_1, y_1, ...``, what MMAction2 1.2.0's
    ``FormatShape('NCHW')`` with ``modality='Flow'`` (0.x: ``'NCHW_Flow'``) gives, channels last. Frames are in
    pipeline order (crop-major, then clip, then time), so output item ``k`` is MMAction2's ``k``-th (crop, clip).

    Args:
        imgs: uint8 (or any dtype) tensor or array whose last axis holds the x and y components.
        clip_len: Consecutive flow frames per stack (the sampler's ``clip_len``).

    Returns:
        The same type as ``imgs``.

    Raises:
        ValueError: The last axis is not 2, or ``clip_len`` does not divide the number of frames.
    """
    x, was_numpy = _as_tensor(imgs)
    if x.dim() < 4 or x.shape[-1] != 2:
        raise InputError(f"flow frames must be (..., N, H, W, 2), got shape {tuple(x.shape)}")
    n, h, w = x.shape[-4:-1]
    if isinstance(clip_len, bool) or not isinstance(clip_len, int) or clip_len < 1 or n % clip_len:
        raise InputError(f"clip_len={clip_len!r} must be a positive int dividing the {n} flow frames")
    lead = x.shape[:-4]
    x = x.reshape(*lead, n // clip_len, clip_len, h, w, 2).movedim(-4, -2)  # (..., K, H, W, clip_len, 2)
    x = x.reshape(*lead, n // clip_len, h, w, 2 * clip_len)
    return x.numpy() if was_numpy else x


def flip_flow(imgs: Array) -> Array:
    """Horizontal flip of flow frames: mirrored left-right, and the x component inverted (``255 - x``).

    Mirroring reverses horizontal motion, and ``255 - q`` is the stored value of ``-v`` (up to how a value exactly
    between two levels rounds). MMAction2's ``Flip`` with ``modality='Flow'`` does this for the layout it was written
    for (see the module docstring for 1.2.0's mismatch).

    Args:
        imgs: uint8 ``(..., H, W, 2)`` tensor or array (x, y channels, before :func:`stack_flow`).

    Returns:
        A new tensor or array of the same type and shape.

    Raises:
        ValueError: The last axis is not 2 or the dtype is not uint8.
    """
    x, was_numpy = _as_tensor(imgs)
    if x.dim() < 3 or x.shape[-1] != 2 or x.dtype != torch.uint8:
        raise InputError(f"flip_flow takes uint8 (..., H, W, 2) flow frames, got {x.dtype} {tuple(x.shape)}")
    out = x.flip(-2)  # a copy
    out[..., 0] = 255 - out[..., 0]
    return out.numpy() if was_numpy else out


# --------------------------------------------------------------------------- extraction


def _import_cv2(method: str) -> Any:
    """OpenCV, with an error that says what to install."""
    try:
        import cv2
    except ImportError as e:
        raise MissingDependencyError(
            "optical-flow extraction needs OpenCV, an optional dependency of vidlab: pip install "
            "opencv-python-headless (for method='tvl1': opencv-contrib-python-headless instead)"
        ) from e
    if method == "tvl1" and not hasattr(cv2, "optflow"):
        raise MissingDependencyError(
            f"method='tvl1' needs OpenCV's contrib module cv2.optflow (DualTVL1OpticalFlow), which this OpenCV "
            f"{cv2.__version__} lacks: pip uninstall opencv-python-headless && pip install "
            "opencv-contrib-python-headless (both provide cv2; keep one), or use method='farneback'"
        )
    return cv2


def _flow_op(cv2: Any, method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``op(prev_gray, next_gray) -> float32 (H, W, 2)`` flow in pixels, as MMAction2's flow_extraction.py."""
    if method == "tvl1":
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create()
        return lambda a, b: tvl1.calc(a, b, None)
    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, *_FARNEBACK)


def _imwrite(cv2: Any, path: Path, img: np.ndarray) -> None:
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: OpenCV could not write the image (unsupported suffix or unwritable folder)")


def _write_flow(cv2: Any, video: Path, out: Path, settings: dict) -> int:
    """Decode ``video`` chunk by chunk, write the quantized flow of consecutive frames into ``out``; the count."""
    op, tmpl = _flow_op(cv2, settings["method"]), settings["filename_tmpl"]
    with VideoReader(video, short_side=settings["short_side"]) as reader:
        n = reader.num_frames
        if n < 2:
            raise VideoDecodeError(str(video), f"optical flow needs at least 2 frames, the video has {n}")
        prev, count = None, 0
        for start in range(0, n, _CHUNK):
            for rgb in reader.read(np.arange(start, min(start + _CHUNK, n))):
                gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                if prev is not None:
                    count += 1
                    q = quantize_flow(op(prev, gray), settings["bound"], settings["rounding"])
                    _imwrite(cv2, out / tmpl.format("x", count), np.ascontiguousarray(q[..., 0]))
                    _imwrite(cv2, out / tmpl.format("y", count), np.ascontiguousarray(q[..., 1]))
                prev = gray
    return count


def _finished(out_dir: Path, settings: dict) -> int | None:
    """The flow-frame count of ``out_dir`` if it holds a finished extraction with ``settings``, else None.

    Raises:
        FileExistsError: ``out_dir`` exists but was not written by :func:`extract_flow` (it is never deleted).
    """
    if not out_dir.exists():
        return None
    try:
        meta = json.loads((out_dir / _META).read_text())
    except (OSError, ValueError):
        raise FileExistsError(
            f"{out_dir} exists but holds no finished vidlab flow extraction ({_META} is missing or broken); "
            "remove it or choose another output folder"
        ) from None
    count = meta.get("num_flow_frames")
    if {k: meta.get(k) for k in settings} != settings or not isinstance(count, int):
        return None
    return count if (out_dir / settings["filename_tmpl"].format("y", count)).is_file() else None


def _sibling(out_dir: Path, kind: str) -> Path:
    """A new hidden folder beside ``out_dir`` (same file system, so renames are atomic; the umask's permissions)."""
    path = out_dir.parent / f".{out_dir.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{kind}"
    path.mkdir(parents=True)
    return path


def _move_into_place(tmp: Path, out_dir: Path) -> None:
    """Rename the finished ``tmp`` folder to ``out_dir``, replacing an earlier vidlab extraction there."""
    old = None
    if out_dir.exists():  # ours (checked by _finished), extracted with other settings
        old = _sibling(out_dir, "old")
        os.replace(out_dir, old / "flow")
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def extract_flow(
    video_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    method: str = "farneback",
    bound: float = 20.0,
    short_side: int | None = None,
    filename_tmpl: str = FLOW_TMPL,
    rounding: str = "round",
) -> int:
    """Extracts the optical flow of a video into x/y image pairs, as MMAction2's flow folders hold them.

    Frames are decoded with vidlab's :class:`~vidlab.data.decode.VideoReader` (RGB, converted to grayscale), the
    flow from frame ``i - 1`` to frame ``i`` is computed with OpenCV, quantized (:func:`quantize_flow`) and
    written as ``filename_tmpl.format('x', i)`` and ``format('y', i)``, ``i = 1 .. num_frames - 1``. The folder
    appears whole or not at all (written to a hidden temporary folder beside it, then renamed); a folder already
    extracted with the same settings is left alone, one extracted with other settings is replaced.

    Args:
        video_path: The video.
        out_dir: Flow folder to create.
        method: ``"farneback"`` (OpenCV's core module) or ``"tvl1"`` (MMAction2's default; needs OpenCV contrib).
        bound: Clipping bound in pixels.
        short_side: Resize frames before computing flow so their shorter side has this length (None: as stored).
        filename_tmpl: File names; the suffix picks the format (``.jpg`` as MMAction2, ``.png`` lossless).
        rounding: See :func:`quantize_flow`.

    Returns:
        The number of flow frames (the video's frame count minus one).

    Raises:
        ImportError: OpenCV (or, for TV-L1, its contrib module) is not installed; the message says what to install.
        VideoDecodeError: The video cannot be decoded or has fewer than 2 frames.
        FileExistsError: ``out_dir`` exists and is not a vidlab flow folder.
        ValueError: Unknown method or rounding, a bad bound or template.
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if rounding not in ROUNDINGS:
        raise InputError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    check_flow_tmpl(filename_tmpl)
    settings = {
        "method": method,
        "bound": _check_bound(bound),
        "short_side": short_side,
        "filename_tmpl": filename_tmpl,
        "rounding": rounding,
    }
    video, out_dir = Path(video_path), Path(out_dir)
    done = _finished(out_dir, settings)
    if done is not None:
        return done
    cv2 = _import_cv2(method)
    tmp = _sibling(out_dir, "tmp")
    try:
        count = _write_flow(cv2, video, tmp, settings)
        (tmp / _META).write_text(json.dumps({**settings, "num_flow_frames": count, "video": str(video)}) + "\n")
        _move_into_place(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a successful rename
    return count


# --------------------------------------------------------------------------- whole lists


def _read_video_list(list_file: Path) -> list[tuple[str, str]]:
    """``(path, targets)`` of every line of a ``path target [target ...]`` list (targets kept verbatim)."""
    from vidlab.data.datasets import AnnotationError  # here: datasets imports this module

    if not list_file.is_file():
        raise AnnotationError(f"annotation file not found: {list_file}")
    rows = []
    for lineno, raw in enumerate(list_file.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2:
            raise AnnotationError(f"{list_file}:{lineno}: expected 'path label [label ...]', got {line!r}")
        rows.append((fields[0], " ".join(fields[1:])))
    return rows


def _flow_job(job: tuple[str, str, dict]) -> int:
    video, out_dir, kwargs = job
    return extract_flow(video, out_dir, **kwargs)


def _init_worker() -> None:
    try:
        import cv2

        cv2.setNumThreads(1)  # one process per core already
    except ImportError:
        pass


def _run_flow_jobs(jobs: list[tuple[str, str, dict]], workers: int, progress: bool) -> list[int]:
    from tqdm import tqdm

    if workers == 1 or len(jobs) <= 1:
        return [_flow_job(job) for job in tqdm(jobs, desc="flow", unit="video", disable=not progress)]
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
        results = pool.imap(_flow_job, jobs)
        return list(tqdm(results, total=len(jobs), desc="flow", unit="video", disable=not progress))


def extract_flow_list(
    list_file: str | os.PathLike,
    root: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    out_list: str | os.PathLike | None = None,
    method: str = "farneback",
    bound: float = 20.0,
    short_side: int | None = None,
    filename_tmpl: str = FLOW_TMPL,
    rounding: str = "round",
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Extracts the flow of every video of a video list and writes the matching MMAction2 rawframe list.

    The video ``<root>/<path>`` of each ``path target [target ...]`` line (e.g. a SynthActions ``train.txt``) gets
    the flow folder ``<out_root>/<path without its suffix>`` (:func:`extract_flow`; finished folders are skipped,
    so an interrupted run resumes), and ``out_list`` gets the line ``<path without suffix> <num_flow_frames>
    <targets>``, read by vidlab's ``rawframes`` format with ``data.root: <out_root>`` (or MMAction2's
    ``RawframeDataset`` with ``modality='Flow'``).

    Args:
        list_file: The video list.
        root: Data root of its paths.
        out_root: Root of the flow folders.
        out_list: The rawframe list to write; default ``<out_root>/<list name>_flow.txt``. Written whole at the end.
        method, bound, short_side, filename_tmpl, rounding: As :func:`extract_flow`.
        workers: Processes extracting videos in parallel.
        progress: Show a progress bar.

    Returns:
        The path of the rawframe list.

    Raises:
        AnnotationError: A missing list or a malformed line (names file:line).
        ValueError: ``workers`` < 1, or as :func:`extract_flow`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive int, got {workers!r}")
    from vidlab.data.datasets import AnnotationError, inside_root  # here: datasets imports this module

    list_file, root, out_root = Path(list_file), Path(root), Path(out_root)
    rows = _read_video_list(list_file)
    outside = [path for path, _ in rows if not inside_root(path)]
    if outside:  # the flow folders mirror the list's paths under out_root: they must stay inside it
        raise AnnotationError(f"{list_file}: path {outside[0]!r} leaves the data root; flow extraction takes paths "
                              f"relative to the root ({len(outside)} such entries)")  # fmt: skip
    out_list = Path(out_list) if out_list is not None else out_root / f"{list_file.stem}_flow.txt"
    kwargs = {"method": method, "bound": bound, "short_side": short_side, "filename_tmpl": filename_tmpl}
    kwargs["rounding"] = rounding
    frame_dirs = [Path(path).with_suffix("").as_posix() for path, _ in rows]
    jobs = [(str(root / path), str(out_root / d), kwargs) for (path, _), d in zip(rows, frame_dirs)]
    counts = _run_flow_jobs(jobs, workers, progress)
    out_list.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_list.with_name(f".{out_list.name}.tmp")
    tmp.write_text("".join(f"{d} {n} {targets}\n" for d, n, (_, targets) in zip(frame_dirs, counts, rows)))
    tmp.replace(out_list)
    logger.info("flow of %d videos of %s in %s; list %s", len(rows), list_file, out_root, out_list)
    return out_list
