"""SynthActions' scenes: the classes' motions, the shapes, sprites, tracks, backgrounds and camera jitter, and a
scene rendered frame by frame (float RGB). :mod:`vidlab.data.synthetic` writes them as videos."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vidlab.errors import InputError

CLASSES: tuple[str, ...] = (
    "moving_left",
    "moving_right",
    "moving_up",
    "moving_down",
    "rotating_clockwise",
    "rotating_counterclockwise",
    "growing",
    "shrinking",
    "fading_in",
    "fading_out",
    "bouncing",
    "static",
)
# (motion kind, played backwards): the second member of each pair is the first one reversed in time.
_CLASS_MOTION: dict[str, tuple[str, bool]] = {
    "moving_left": ("translate_x", False),
    "moving_right": ("translate_x", True),
    "moving_up": ("translate_y", False),
    "moving_down": ("translate_y", True),
    "rotating_clockwise": ("rotate", False),
    "rotating_counterclockwise": ("rotate", True),
    "growing": ("scale", False),
    "shrinking": ("scale", True),
    "fading_in": ("fade", False),
    "fading_out": ("fade", True),
    "bouncing": ("bounce", False),
    "static": ("static", False),
}

_JITTER = 2  # max camera shift in pixels
_SHAPES = ("circle", "ellipse", "triangle", "square", "pentagon", "hexagon", "star", "star4")


# ----------------------------------------------------------------------------------------------------------------
# Shapes
# ----------------------------------------------------------------------------------------------------------------


def _polygon_table(radii: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-edge constants of a star-shaped polygon with vertices at angles 2*pi*k/N and the given radii.

    For a ray with direction d from the centre, the edge (P1, P2) is hit at distance
    ``cross(P1, P2) / cross(d, P2 - P1)``.
    """
    n = len(radii)
    ang = 2 * np.pi * np.arange(n + 1) / n
    rad = np.asarray(list(radii) + [radii[0]], dtype=np.float64)
    px, py = rad * np.cos(ang), rad * np.sin(ang)
    ex, ey = px[1:] - px[:-1], py[1:] - py[:-1]
    cross = px[:-1] * py[1:] - py[:-1] * px[1:]
    return cross.astype(np.float32), ex.astype(np.float32), ey.astype(np.float32)


_POLYGONS: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {
    "triangle": _polygon_table([1.0] * 3),
    "square": _polygon_table([1.0] * 4),
    "pentagon": _polygon_table([1.0] * 5),
    "hexagon": _polygon_table([1.0] * 6),
    "star": _polygon_table([1.0, 0.45] * 5),
    "star4": _polygon_table([1.0, 0.5] * 4),
}


def _unit_radius(shape: str, lx: np.ndarray, ly: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Boundary radius (for an object of radius 1) in the direction of each local point (lx, ly)."""
    if shape == "circle":
        return np.ones_like(rho)
    inv = 1.0 / np.maximum(rho, 1e-6)
    cos, sin = lx * inv, ly * inv
    if shape == "ellipse":  # semi-axes 1 and 0.6
        return 0.6 / np.maximum(np.sqrt((0.6 * cos) ** 2 + sin**2), 1e-6)
    cross, ex, ey = _POLYGONS[shape]
    n = len(cross)
    theta = np.mod(np.arctan2(ly, lx), 2 * np.pi)
    k = np.minimum((theta * (n / (2 * np.pi))).astype(np.int64), n - 1)
    # At the very centre cos = sin = 0: the tiny denominator makes the radius huge, i.e. "inside".
    return cross[k] / np.maximum(cos * ey[k] - sin * ex[k], 1e-6)


def _render_sprite(
    shape: str, r: float, phi: float, color: np.ndarray, marker: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased sprite of a shape centred on the middle pixel of a square grid.

    ``phi`` rotates the shape; on screen (y pointing down) a growing ``phi`` turns it clockwise. ``marker`` is
    the colour of an off-centre dot that makes the rotation visible.

    Returns:
        ``(cover, premultiplied)``: coverage (S, S, 1) in [0, 1] and coverage * colour (S, S, 3).
    """
    e = math.ceil(r + 1.5)
    grid = np.arange(-e, e + 1, dtype=np.float32)
    xs, ys = grid[None, :], grid[:, None]
    c, s = np.float32(math.cos(phi)), np.float32(math.sin(phi))
    lx, ly = c * xs + s * ys, c * ys - s * xs  # (S, S) shape-local coordinates
    rho = np.sqrt(lx * lx + ly * ly)
    edge = r * _unit_radius(shape, lx, ly, rho) - rho  # > 0 inside, in pixels (radially)
    cover = np.minimum(np.maximum(edge + 0.5, 0.0), 1.0)
    fill = np.minimum(np.maximum(edge - (0.5 + 0.04 * r), 0.0), 1.0)  # the rest of `cover` is a dark outline
    col = (color * 0.35) + fill[..., None] * (color * 0.65)
    if marker is not None:
        dot = np.minimum(np.maximum(0.32 * r + 0.5 - np.sqrt((lx - 0.5 * r) ** 2 + ly * ly), 0.0), 1.0) * fill
        col += dot[..., None] * (marker - col)
    cover = cover[..., None]
    return cover, cover * col


def _blit(frame: np.ndarray, sprite: tuple[np.ndarray, np.ndarray], cx: float, cy: float, alpha: float) -> None:
    """Alpha-composite a sprite into ``frame`` (H, W, 3) float32 in place, centred on the pixel nearest (cx, cy)."""
    cover, premult = sprite
    size = cover.shape[0]
    h, w = frame.shape[:2]
    x0, y0 = math.floor(cx + 0.5) - size // 2, math.floor(cy + 0.5) - size // 2
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + size, w), min(y0 + size, h)
    if alpha <= 0.0 or fx0 >= fx1 or fy0 >= fy1:
        return
    region = frame[fy0:fy1, fx0:fx1]
    c = cover[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    p = premult[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    if alpha >= 1.0:
        region += p - c * region
    else:
        region += np.float32(alpha) * (p - c * region)


# ----------------------------------------------------------------------------------------------------------------
# Scene: background, actor, distractors, camera
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Track:
    """One object: per-frame centre / radius / angle / opacity arrays (length T) and its look."""

    cx: np.ndarray
    cy: np.ndarray
    r: np.ndarray
    phi: np.ndarray
    alpha: np.ndarray
    shape: str
    color: np.ndarray
    marker: np.ndarray | None = None
    _key: tuple[float, float] | None = field(default=None, repr=False)
    _sprite: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    def reversed(self) -> _Track:
        return _Track(
            self.cx[::-1], self.cy[::-1], self.r[::-1], self.phi[::-1], self.alpha[::-1], self.shape, self.color,
            self.marker,
        )  # fmt: skip

    def draw(self, frame: np.ndarray, f: int, shift_x: int, shift_y: int) -> None:
        """Draw the object as it is at frame ``f``, moved by (shift_x, shift_y) pixels."""
        key = (float(self.r[f]), float(self.phi[f]))
        if key != self._key:  # most objects keep their size and angle: render the sprite once
            self._key, self._sprite = key, _render_sprite(self.shape, key[0], key[1], self.color, self.marker)
        _blit(frame, self._sprite, self.cx[f] + shift_x, self.cy[f] + shift_y, float(self.alpha[f]))


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    i = int(h * 6.0) % 6
    f = h * 6.0 - math.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return np.asarray(rgb, dtype=np.float32)


def _contrasting_color(rng: np.random.Generator, against: np.ndarray, min_dist: float) -> np.ndarray:
    """A saturated colour at least ``min_dist`` (RGB euclidean) from ``against``, or the farthest of 20 tries."""
    best, best_d = None, -1.0
    for _ in range(20):
        col = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
        d = float(np.linalg.norm(col - against))
        if d >= min_dist:
            return col
        if d > best_d:
            best, best_d = col, d
    return best


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    """Bilinear upsampling of a small (gh, gw, C) grid to (h, w, C)."""
    gh, gw = grid.shape[:2]
    fy, fx = np.linspace(0, gh - 1, h, dtype=np.float32), np.linspace(0, gw - 1, w, dtype=np.float32)
    y0, x0 = np.minimum(fy.astype(np.int64), gh - 2), np.minimum(fx.astype(np.int64), gw - 2)
    wy, wx = (fy - y0)[:, None, None], (fx - x0)[None, :, None]
    top = grid[y0][:, x0] * (1 - wx) + grid[y0][:, x0 + 1] * wx
    bottom = grid[y0 + 1][:, x0] * (1 - wx) + grid[y0 + 1][:, x0 + 1] * wx
    return top * (1 - wy) + bottom * wy


def _make_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A muted random gradient plus one random texture (value noise, stripes, checkers or blobs), (h, w, 3)."""
    yy = np.arange(h, dtype=np.float32)[:, None] / h
    xx = np.arange(w, dtype=np.float32)[None, :] / w
    c1 = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.05, 0.5), rng.uniform(0.25, 0.8))
    c2 = _hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.05, 0.5), rng.uniform(0.25, 0.8))
    a = rng.uniform(0, 2 * np.pi)
    g = xx * math.cos(a) + yy * math.sin(a)
    g = (g - g.min()) / max(float(g.max() - g.min()), 1e-6)
    bg = c1 + (c2 - c1) * g[..., None]
    kind = int(rng.integers(4))
    amp = rng.uniform(0.04, 0.12)
    tint = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
    if kind == 0:  # smooth value noise
        grid = rng.uniform(-1, 1, size=(int(rng.integers(3, 9)), int(rng.integers(4, 12)), 3)).astype(np.float32)
        bg += amp * _upsample(grid, h, w)
    elif kind == 1:  # stripes
        b, freq = rng.uniform(0, np.pi), rng.uniform(3, 10)
        pattern = np.sin(2 * np.pi * freq * (xx * math.cos(b) + yy * math.sin(b) * h / w) + rng.uniform(0, 6.3))
        bg += amp * pattern[..., None] * tint
    elif kind == 2:  # checkerboard
        cell = int(rng.integers(8, 24))
        checks = ((np.arange(h)[:, None] // cell + np.arange(w)[None, :] // cell) % 2) * 2.0 - 1.0
        bg += amp * checks[..., None].astype(np.float32) * tint
    else:  # soft blobs
        for _ in range(int(rng.integers(3, 7))):
            bx, by, bs = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.25)
            blob = np.exp(-((xx - bx) ** 2 + ((yy - by) * h / w) ** 2) / (2 * bs * bs))
            bg += rng.uniform(-2, 2) * amp * blob[..., None] * tint
    bg += rng.normal(0.0, 0.015, size=(h, w, 1)).astype(np.float32)  # static grain
    return np.clip(bg, 0.0, 1.0).astype(np.float32)


def _progress(rng: np.random.Generator, n: int) -> np.ndarray:
    """Action progress in [0, 1] per frame: linear from a start in the first 10% to an end in the last 10%."""
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    t0, t1 = rng.uniform(0.0, 0.1), rng.uniform(0.9, 1.0)
    return np.clip((t - t0) / (t1 - t0), 0.0, 1.0)


def _travel(rng: np.random.Generator, u: np.ndarray, length: int, r: float) -> np.ndarray:
    """Positions along one axis going from the high end toward the low end, covering 60-90% of the free range."""
    lo, hi = r + 1.0, length - r - 1.0
    dist = rng.uniform(0.6, 0.9) * (hi - lo)
    start = rng.uniform(lo + dist, hi)
    return start - dist * u


def _actor_track(
    rng: np.random.Generator, kind: str, n: int, w: int, h: int, bg_mean: np.ndarray, size: float = 1.0
) -> _Track:
    """The actor's trajectory for a motion kind, in its forward (not reversed) direction; ``size`` scales it."""
    short = min(w, h) * size
    u = _progress(rng, n)
    ones = np.ones(n)
    r = rng.uniform(0.11, 0.17) * short * ones  # diameter 22-34% of the short side
    if kind == "scale":
        r_small, r_big = rng.uniform(0.05, 0.08) * short, rng.uniform(0.16, 0.20) * short
        r = r_small + (r_big - r_small) * u
    rmax = float(r.max())
    cx = rng.uniform(rmax + 1, w - rmax - 1) * ones
    cy = rng.uniform(rmax + 1, h - rmax - 1) * ones
    phi = rng.uniform(0, 2 * np.pi) * ones
    alpha = ones.copy()
    if kind == "translate_x":  # right -> left
        cx = _travel(rng, u, w, rmax)
        cy = np.clip(cy + rng.uniform(-0.05, 0.05) * h * u, rmax + 1, h - rmax - 1)
    elif kind == "translate_y":  # bottom -> top
        cy = _travel(rng, u, h, rmax)
        cx = np.clip(cx + rng.uniform(-0.05, 0.05) * w * u, rmax + 1, w - rmax - 1)
    elif kind == "rotate":  # clockwise on screen by 180-360 degrees, about a pivot off the shape's centre
        arm = rng.uniform(0.6, 1.0) * rmax  # the pivot is this far from the centre, so the whole shape swings
        px = rng.uniform(rmax + arm + 1, w - rmax - arm - 1)
        py = rng.uniform(rmax + arm + 1, h - rmax - arm - 1)
        phi = phi + rng.uniform(1.0, 2.0) * np.pi * u
        cx, cy = px + arm * np.cos(phi), py + arm * np.sin(phi)
    elif kind == "fade":
        alpha = u
    elif kind == "bounce":  # 2 or 3 hops from a floor near the bottom
        floor = h - rmax - 1 - rng.uniform(0, 0.1) * h
        height = rng.uniform(0.45, 0.8) * (floor - rmax - 1)
        cy = floor - height * np.abs(np.sin(np.pi * int(rng.integers(2, 4)) * u))
    elif kind not in ("static", "scale"):
        raise InputError(f"unknown motion kind {kind!r}")
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    color = _contrasting_color(rng, bg_mean, 0.45)
    lum = float(color @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32))
    marker = np.full(3, 0.08 if lum > 0.5 else 0.95, dtype=np.float32)
    return _Track(cx, cy, r, phi, alpha, shape, color, marker)


def _reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold coordinates into [lo, hi] as if bouncing off the borders."""
    span = max(hi - lo, 1e-6)
    y = np.mod(x - lo, 2 * span)
    return lo + np.where(y > span, 2 * span - y, y)


def _distractor_track(rng: np.random.Generator, n: int, w: int, h: int, bg_mean: np.ndarray) -> _Track:
    """A small shape drifting slowly in a random direction with some wobble, bouncing off the borders."""
    short = min(w, h)
    t = np.arange(n, dtype=np.float64) / max(n - 1, 1)
    r = rng.uniform(0.03, 0.055) * short
    direction, drift = rng.uniform(0, 2 * np.pi), rng.uniform(0.0, 0.25) * w
    wobble, freq, phase = rng.uniform(0, 0.04) * short, rng.uniform(0.5, 2.0), rng.uniform(0, 2 * np.pi)
    cx = rng.uniform(0, w) + drift * math.cos(direction) * t + wobble * np.sin(2 * np.pi * freq * t + phase)
    cy = rng.uniform(0, h) + drift * math.sin(direction) * t + wobble * np.cos(2 * np.pi * freq * t + phase)
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    color = _contrasting_color(rng, bg_mean, 0.3)
    ones = np.ones(n)
    phi = rng.uniform(0, 2 * np.pi) * ones  # fixed size and angle: the sprite is rendered once
    return _Track(_reflect(cx, r, w - r), _reflect(cy, r, h - r), r * ones, phi, ones, shape, color)


def _camera_jitter(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer camera offsets per frame: a random walk with steps in {-1, 0, 1} kept within +-_JITTER."""
    out = []
    for _ in range(2):
        steps = rng.choice(np.asarray([-1, 0, 0, 1]), size=n)
        pos, walk = 0, np.empty(n, dtype=np.int64)
        for i, step in enumerate(steps):
            pos = min(max(pos + int(step), -_JITTER), _JITTER)
            walk[i] = pos
        out.append(walk)
    return out[0], out[1]


# ----------------------------------------------------------------------------------------------------------------
# One video
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Scene:
    """Everything needed to render one video frame by frame."""

    info: dict[str, Any]
    background: np.ndarray  # (H + 2J, W + 2J, 3) float32
    tracks: list[_Track]  # drawn in order: distractors first, actor last
    dx: np.ndarray
    dy: np.ndarray
    speed: float = 0.0  # the regression target: see _actor_speed


def _actor_speed(track: _Track, short_side: int) -> float:
    """The actor's speed while it moves, in percent of the frame's short side per frame (0 if it never moves).

    A frame step's displacement is the root-mean-square displacement of the points of a disk of the actor's
    radius that moves, turns and scales with the actor: ``sqrt(|dc|^2 + (dr^2 + (r * dphi)^2) / 2)`` for a
    centre step ``dc``, radius step ``dr`` and turn ``dphi`` (for a uniform disk the mean squared distance to
    the centre is ``r^2 / 2``). The speed is the mean over the steps where it is not zero, i.e. while the action
    is in progress; the camera jitter is not part of it. Computed from the track only: no random draws.
    """
    r_mid = (track.r[1:] + track.r[:-1]) / 2
    sq = (
        np.diff(track.cx) ** 2
        + np.diff(track.cy) ** 2
        + (np.diff(track.r) ** 2 + (r_mid * np.diff(track.phi)) ** 2) / 2
    )
    step = np.sqrt(sq)
    moving = step > 1e-9
    return float(step[moving].mean() * 100.0 / short_side) if moving.any() else 0.0


def _iter_frames(scene: _Scene) -> Iterator[np.ndarray]:
    """Yield the scene's frames as float32 (H, W, 3) RGB arrays in [0, 1]."""
    w, h = scene.info["width"], scene.info["height"]
    for f in range(scene.info["num_frames"]):
        ox, oy = int(scene.dx[f]), int(scene.dy[f])
        frame = scene.background[_JITTER + oy : _JITTER + oy + h, _JITTER + ox : _JITTER + ox + w].copy()
        for track in scene.tracks:
            track.draw(frame, f, -ox, -oy)  # the camera moving by (ox, oy) moves the scene by (-ox, -oy)
        yield frame


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    return (frame * 255.0 + 0.5).astype(np.uint8)
