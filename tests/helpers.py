"""Test helpers: tiny real videos whose frames carry their own index.

``write_indexed_video`` paints frame ``i``'s index as a binary code of big black/white blocks (8 bits
on a 4x2 grid, over a moving gradient so that the encoder has motion to predict), which survives
lossy compression and resizing; ``read_index`` recovers it from a decoded RGB frame.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

GRID_COLS, GRID_ROWS = 4, 2
MAX_FRAMES = 2 ** (GRID_COLS * GRID_ROWS)

X264_PARAMS = "keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:b-adapt=0:b-pyramid=normal"
X265_PARAMS = "keyint={gop}:min-keyint={gop}:scenecut=0:bframes={bframes}:b-adapt=0:log-level=error"


def paint_index(index: int, width: int = 96, height: int = 64) -> np.ndarray:
    """RGB uint8 (height, width, 3) image encoding ``index`` in black/white blocks."""
    if not 0 <= index < MAX_FRAMES:
        raise ValueError(f"index {index} does not fit in {GRID_COLS * GRID_ROWS} bits")
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.empty((height, width, 3), np.uint8)
    img[..., 0] = (xx * 2 + index * 3) % 256
    img[..., 1] = (yy * 3 + index * 5) % 256
    img[..., 2] = 128
    bw, bh = width // GRID_COLS, height // GRID_ROWS
    for bit in range(GRID_COLS * GRID_ROWS):
        r, c = divmod(bit, GRID_COLS)
        # Leave a margin around each block so that the gradient between blocks stays visible.
        y0, x0 = r * bh + bh // 6, c * bw + bw // 6
        img[y0 : y0 + bh * 2 // 3, x0 : x0 + bw * 2 // 3] = 255 if (index >> bit) & 1 else 0
    return img


def read_index(frame: np.ndarray) -> int:
    """Recovers the index painted by ``paint_index`` from an RGB frame of any size."""
    height, width = frame.shape[:2]
    bw, bh = width / GRID_COLS, height / GRID_ROWS
    value = 0
    for bit in range(GRID_COLS * GRID_ROWS):
        r, c = divmod(bit, GRID_COLS)
        cy, cx = (r + 0.5) * bh, (c + 0.5) * bw
        patch = frame[int(cy - bh / 6) : int(cy + bh / 6) + 1, int(cx - bw / 6) : int(cx + bw / 6) + 1]
        if patch.mean() > 128:
            value |= 1 << bit
    return value


def write_indexed_video(
    path: str | os.PathLike,
    num_frames: int = 72,
    fps: int = 25,
    size: tuple[int, int] = (96, 64),
    codec: str = "libx264",
    bframes: int = 3,
    gop: int = 12,
    pts: Sequence[int] | None = None,
    time_base: tuple[int, int] | None = None,
) -> Path:
    """Writes a video whose frame ``i`` shows ``paint_index(i)``; the container follows the suffix.

    Args:
        path: Output file (``.mp4``, ``.mkv``, ``.avi``, ...).
        num_frames: Number of frames (at most 256).
        fps: Frame rate.
        size: (width, height).
        codec: ``"libx264"``, ``"libx265"``, ``"mpeg4"`` or ``"mpeg2video"``.
        bframes: Consecutive B-frames (0 disables them); x264/x265 place them in every mini-GOP.
        gop: Keyframe interval, fixed (no scene-cut keyframes).
        pts: Explicit presentation timestamps in ``time_base`` units, for variable frame rate.
        time_base: (num, den) of the stream time base when ``pts`` is given.

    Returns:
        The path written.
    """
    path = Path(path)
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"x264-params": X264_PARAMS.format(gop=gop, bframes=bframes), "crf": "18"}
        elif codec == "libx265":
            stream.options = {"x265-params": X265_PARAMS.format(gop=gop, bframes=bframes), "crf": "18"}
        else:
            stream.options = {"g": str(gop), "bf": str(bframes), "qscale": "3"}
            stream.codec_context.flags |= av.codec.context.Flags.qscale
        if time_base is not None:
            from fractions import Fraction

            stream.time_base = Fraction(*time_base)
            stream.codec_context.time_base = Fraction(*time_base)
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(paint_index(i, width, height), format="rgb24")
            if pts is not None:
                frame.pts = int(pts[i])
                frame.time_base = stream.codec_context.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def decode_all(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Straightforward full decode: every frame in decoder output order, RGB (T, H, W, 3)."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if size is None:
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                frames.append(frame.to_ndarray(width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR"))
    return np.stack(frames)


def child_pids(pid: int, recursive: bool = False) -> list[int]:
    """The child processes of ``pid`` (all its descendants with ``recursive``), from ``/proc``; processes that end
    while they are read are left out."""
    out, todo = [], [pid]
    while todo:
        for task in Path(f"/proc/{todo.pop()}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
            out += kids
            todo += kids if recursive else []
    return out
