"""Writes flow_mmaction2.json: what MMAction2 1.2.0 does with optical-flow frames.

Run in the reference environment (MMAction2 1.2.0 with OpenCV; vidlab is not needed)::

    PYTHONPATH=/work/shared/refs /tmp/refs/mm/bin/python tests/assets/make_flow_mmaction2.py

Flow images are tiny grayscale frames whose pixel value names its direction, frame and position
(``2 * (t * H * W + y * W + x) + d``, ``d = 0`` for x, 1 for y), so every output value says where it came from.
Recorded cases:

* ``decode``: ``RawFrameDecode`` with ``modality='Flow'`` on x/y files written losslessly as PNG
  (``filename_tmpl='{}_{:05d}.png'``), for 1-based ``frame_inds`` with a repeat; and on grayscale JPEGs written by
  ``cv2.imwrite`` (their bytes are stored, so the test decodes the same files).
* ``format``: ``FormatShape('NCHW')`` on ``(crops * clips * clip_len, H, W, 2)`` frames with ``modality='Flow'``
  (MMAction2 1.2.0's replacement of the 0.x ``NCHW_Flow``).
* ``flip``: ``Flip(flip_ratio=1.0)`` with ``modality='Flow'`` on the list of alternating x, y grayscale frames its
  ``_flip_imgs`` was written for (MMAction2 0.x's ``RawFrameDecode`` output), and on 1.2.0's own
  ``RawFrameDecode`` output (``(H, W, 2)`` frames), which that code no longer matches.
* ``quantize``: ``flow_to_img`` of ``tools/misc/flow_extraction.py`` (clip to the bound, shift, scale, truncate to
  uint8) on float32 values.
"""

import base64
import importlib.util
import json
import tempfile
from pathlib import Path

import refshim  # noqa: F401  (must precede mmaction)

# isort: split
import cv2
import mmaction
import numpy as np
from mmaction.datasets.transforms import Flip, FormatShape, RawFrameDecode

OUT = Path(__file__).with_name("flow_mmaction2.json")
H, W = 3, 4


def flow_frames(n: int) -> np.ndarray:
    """(n, H, W, 2) uint8 flow frames; pixel (y, x) of direction d in frame t holds 2 * (t*H*W + y*W + x) + d."""
    t, y, x, d = np.meshgrid(np.arange(n), np.arange(H), np.arange(W), np.arange(2), indexing="ij")
    values = 2 * (t * H * W + y * W + x) + d
    assert values.max() < 256
    return values.astype(np.uint8)


def decode_png_case(frames: np.ndarray, frame_inds: list[int]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        for t, frame in enumerate(frames, start=1):
            cv2.imwrite(f"{tmp}/x_{t:05d}.png", frame[..., 0])
            cv2.imwrite(f"{tmp}/y_{t:05d}.png", frame[..., 1])
        results = {
            "frame_dir": tmp,
            "filename_tmpl": "{}_{:05d}.png",
            "modality": "Flow",
            "frame_inds": np.array(frame_inds),
        }
        out = RawFrameDecode().transform(results)
    return {"frames": frames.tolist(), "frame_inds": frame_inds, "imgs": np.stack(out["imgs"]).tolist()}


def decode_jpeg_case() -> dict:
    """Grayscale JPEGs of smooth images (as denseflow / flow_extraction.py write them), decoded by MMAction2."""
    yy, xx = np.meshgrid(np.arange(16), np.arange(24), indexing="ij")
    files, imgs = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        for t in (1, 2):
            for d, name in enumerate("xy"):
                img = np.round(128 + 90 * np.sin(xx / 4.0 + t + d) * np.cos(yy / 5.0 - d)).astype(np.uint8)
                path = Path(tmp) / f"flow_{name}_{t:05d}.jpg"
                cv2.imwrite(str(path), img)
                files[path.name] = base64.b64encode(path.read_bytes()).decode()
        results = {"frame_dir": tmp, "filename_tmpl": "flow_{}_{:05d}.jpg", "modality": "Flow"}
        results["frame_inds"] = np.array([2, 1])
        imgs = np.stack(RawFrameDecode().transform(results)["imgs"])
    return {"filename_tmpl": "flow_{}_{:05d}.jpg", "frame_inds": [2, 1], "files": files, "imgs": imgs.tolist()}


def format_case(num_crops: int, num_clips: int, clip_len: int) -> dict:
    frames = flow_frames(num_crops * num_clips * clip_len)
    results = {"imgs": frames.copy(), "modality": "Flow", "num_clips": num_clips, "clip_len": clip_len}
    out = FormatShape(input_format="NCHW").transform(results)["imgs"]
    return {
        "num_crops": num_crops,
        "num_clips": num_clips,
        "clip_len": clip_len,
        "frames": frames.tolist(),
        "out": out.tolist(),
    }


def flip_cases(frames: np.ndarray) -> dict:
    # MMAction2 0.x layout: [x_0, y_0, x_1, y_1, ...] grayscale frames (what Flip._flip_imgs indexes).
    interleaved = [np.ascontiguousarray(frames[t, ..., d]) for t in range(len(frames)) for d in range(2)]
    out = Flip(flip_ratio=1.0).transform({"imgs": interleaved, "modality": "Flow"})["imgs"]
    pairs = np.stack([np.stack([out[2 * t], out[2 * t + 1]], axis=-1) for t in range(len(frames))])
    # MMAction2 1.2.0 layout: RawFrameDecode stacks x and y, (H, W, 2) per frame.
    stacked = [frame.copy() for frame in frames]
    out_120 = np.stack(Flip(flip_ratio=1.0).transform({"imgs": stacked, "modality": "Flow"})["imgs"])
    return {"frames": frames.tolist(), "interleaved_layout": pairs.tolist(), "stacked_layout_1_2_0": out_120.tolist()}


def quantize_case() -> dict:
    path = Path(mmaction.__file__).parent / ".mim" / "tools" / "misc" / "flow_extraction.py"
    spec = importlib.util.spec_from_file_location("flow_extraction", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(0)
    special = [-25.0, -20.0, -19.99, -10.0, -1e-3, 0.0, 1e-3, 0.0784, 0.5, 10.0, 19.99, 20.0, 33.0]
    values = np.concatenate([np.float32(special), rng.uniform(-24, 24, 64).astype(np.float32)])
    flow = np.stack([values, -values], axis=-1).reshape(1, -1, 2)  # (1, n, 2), as OpenCV's (H, W, 2) float32 flow
    out = {}
    for bound in (20.0, 15.0):
        x = module.flow_to_img(flow[..., 0].copy(), bound)
        y = module.flow_to_img(flow[..., 1].copy(), bound)
        out[str(bound)] = np.stack([x, y], axis=-1)[0].tolist()
    return {"flow": flow[0].tolist(), "dtype": "float32", "uint8": out}


def main() -> None:
    frames = flow_frames(6)
    fixture = {
        "mmaction2": mmaction.__version__,
        "decode_png": decode_png_case(frames, [3, 1, 1, 6, 2]),
        "decode_jpeg": decode_jpeg_case(),
        "format": [format_case(1, 2, 3), format_case(2, 2, 2), format_case(2, 1, 5)],
        "flip": flip_cases(flow_frames(3)),
        "quantize": quantize_case(),
    }
    OUT.write_text(json.dumps(fixture, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
