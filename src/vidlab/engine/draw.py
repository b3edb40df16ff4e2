"""Detections drawn into a video: ``vidlab predict VIDEO --checkpoint DETECTOR.pth`` writes an MP4 with each
keyframe's person boxes and their actions on the frames around it."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vidlab.data.decode import VideoReader

_COLOURS = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180))


def draw_detections(video, out, rows, names: dict[int, str], score_thr: float, det, video_id: str) -> Path:
    """Write ``out``: ``video``'s frames with the boxes of ``rows`` (AVA result rows of ``video_id``) drawn on
    every frame within half a keyframe step of their keyframe, labelled with the actions scoring ``score_thr`` or
    more. ``det``: the detection options (keyframe unit, timestamp start)."""
    from PIL import Image, ImageDraw  # pillow ships with matplotlib

    boxes: dict[int, dict[tuple, list[str]]] = {}
    for vid, stamp, x1, y1, x2, y2, action, score in rows:
        if vid != video_id:
            continue
        labels = boxes.setdefault(int(stamp), {}).setdefault((x1, y1, x2, y2), [])
        if score >= score_thr:
            labels.append(f"{names.get(action, action)} {score:.2f}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with VideoReader(video) as reader, av.open(str(out), "w", format="mp4") as container:
        fps = reader.fps or det.fps
        stamps = np.asarray(sorted(boxes))
        centres = stamps if det.keyframe_unit == "frame" else (stamps - det.timestamp_start) * fps
        half = max(np.diff(centres).min() / 2 if len(centres) > 1 else fps / 2, 1)
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height = reader.width - reader.width % 2, reader.height - reader.height % 2  # yuv420p
        stream.pix_fmt = "yuv420p"
        for i in range(reader.num_frames):
            frame = reader.read([i])[0]
            image = Image.fromarray(frame)
            if len(centres):
                k = int(np.abs(centres - i).argmin())
                if abs(centres[k] - i) <= half:
                    _draw(ImageDraw.Draw(image), boxes[int(stamps[k])], image.size)
            rgb = np.asarray(image)[: stream.height, : stream.width]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        container.mux(stream.encode(None))
    return out


def _draw(draw, boxes: dict[tuple, list[str]], size: tuple[int, int]) -> None:
    w, h = size
    for j, ((x1, y1, x2, y2), labels) in enumerate(boxes.items()):
        colour = _COLOURS[j % len(_COLOURS)]
        draw.rectangle([x1 * w, y1 * h, x2 * w, y2 * h], outline=colour, width=2)
        for k, text in enumerate(labels):
            draw.text((x1 * w + 2, y1 * h + 2 + 10 * k), text, fill=colour)
