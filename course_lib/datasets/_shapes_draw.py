"""Drawing primitives of :class:`course_lib.datasets.ShapesDataset`: random stream, textured
background, shape rasters and paint.

Everything works inside a shape's bounding box and on Python floats where it can: a 64x64
sample costs a few hundred microseconds, most of it in ~40 small NumPy calls.

References
----------
- Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011 (Philox, the
  counter-based generator that gives every sample its own stream).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__: list[str] = []  # private helpers of course_lib.datasets.shapes


class _Uniforms:
    """Uniform floats drawn in blocks of 128 and handed out as Python floats, ``take(k)``
    at a time: scalar arithmetic on Python floats is far cheaper than on NumPy scalars."""

    __slots__ = ("gen", "buf", "pos")

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen, self.buf, self.pos = gen, gen.random(128).tolist(), 0

    def take(self, k: int) -> list[float]:
        if self.pos + k > len(self.buf):
            self.buf = self.buf[self.pos :] + self.gen.random(128).tolist()
            self.pos = 0
        out = self.buf[self.pos : self.pos + k]
        self.pos += k
        return out


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Standard normal noise, shape (3, 4 * size, 4 * size), float32, from a fixed seed."""
    return np.random.default_rng(20240601).standard_normal((3, 4 * size, 4 * size), np.float32)


def _background(u, size: int) -> tuple[np.ndarray, list[float]]:
    """Two random colours blended by an oriented sinusoidal texture: (3, H, W), mean colour.

    ``sin(a x + b y + p) = sin(a x + p) cos(b y) + cos(a x + p) sin(b y)`` makes the texture
    a rank-2 product: one (H, 2) @ (2, W) matmul instead of a sine per pixel.
    """
    r0, g0, b0, r1, g1, b1, u_theta, u_freq, phase = u.take(9)
    c0, c1 = (r0, g0, b0), (r1, g1, b1)
    theta, freq = math.pi * u_theta, (1.0 + 3.0 * u_freq) * 2 * math.pi / size
    fx, fy, p, q = freq * math.cos(theta), freq * math.sin(theta), 2 * math.pi * phase, math.pi / 2
    # One sine over (4, S): sin(ax), cos(ax) = sin(ax + pi/2), cos(by), sin(by).
    coef = np.array([[fx, p], [fx, p + q], [fy, q], [fy, 0.0]], dtype=np.float32)  # (4, 2)
    trig = np.sin(coef[:, :1] * _coords(size) + coef[:, 1:])  # (4, S)
    t = trig[2:].T @ trig[:2]  # (H, 2) @ (2, W) = sin(ax + by), in [-1, 1]
    mean = [(a + b) / 2 for a, b in zip(c0, c1)]
    half = np.array([(b - a) / 2 for a, b in zip(c0, c1)], dtype=np.float32)  # (3,)
    image = np.multiply.outer(half, t)  # (3, H, W): c0 + (c1 - c0) (1 + t) / 2 ...
    image += np.array(mean, dtype=np.float32)[:, None, None]  # ... = mean + half t
    return image, mean


@lru_cache(maxsize=2)
def _normals(k: int) -> np.ndarray:
    """Unit outward normals of a regular k-gon, shape (K, 2) as (x, y), the first along x."""
    a = 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


@lru_cache(maxsize=64)
def _coords(size: int) -> np.ndarray:
    """Pixel-centre coordinates 0.5, 1.5, ..., shape (size,), float32."""
    return np.arange(size, dtype=np.float32) + 0.5


def _raster(u, label: int, size: int, scale):
    """One shape of class ``label`` at a random place, scale and angle.

    Returns the boolean mask (h, w) of the shape inside its bounding box and the box's
    slices into the (H, W) image: all later work touches only the box.
    """
    u_r, u_y, u_x, u_a = u.take(4)
    r = (scale[0] + (scale[1] - scale[0]) * u_r) * size / 2  # half the diameter, in pixels
    cy, cx = r * 0.5 + (size - r) * u_y, r * 0.5 + (size - r) * u_x
    angle = 2 * math.pi * u_a
    reach = 1.25 * r  # every shape fits in a disc of this radius around its centre
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, size)
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, size)
    box = (slice(y0, y1), slice(x0, x1))
    coords = _coords(size)
    dy = (coords[y0:y1] - cy)[:, None]  # (h, 1) offsets from the centre
    dx = coords[x0:x1] - cx  # (w,)
    if label == 1:  # circle
        return dy * dy + dx * dx <= r * r, box
    # Polygons are intersections of half-planes n_k . (x - c) <= d, all tested at once.
    if label == 2:  # square of half-side 0.886 r: the same area as the circle (sqrt(pi)/2)
        normals, d = _normals(4), r * 0.886
    else:  # equilateral triangle, inradius 0.6 r (circumradius 1.2 r)
        normals, d = _normals(3), 0.6 * r
    cos, sin = math.cos(angle), math.sin(angle)
    rot = normals @ np.array([[cos, sin], [-sin, cos]], dtype=np.float32)  # (K, 2) turned
    proj = rot[:, :1, None] * dx + rot[:, 1:, None] * dy  # (K, h, w)
    return proj.max(axis=0) <= d, box


def _paint(u, image: np.ndarray, inside, box, bg_mean) -> None:
    """Fill the shape ``inside`` its ``box`` with a random colour and a shading ramp.

    The colour is drawn independently of the class, but far enough from the background.
    """
    draws = u.take(26)  # 8 candidate colours and a shading ramp
    m0, m1, m2 = bg_mean
    colour = draws[0:3]
    for i in range(0, 24, 3):  # the first candidate far from the background
        r, g, b = draws[i : i + 3]
        if abs(r - m0) + abs(g - m1) + abs(b - m2) > 0.6:
            colour = (r, g, b)
            break
    gy, gx = ((v - 0.5) * 0.6 / image.shape[1] for v in draws[24:])
    h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
    ramp_y = gy * (_coords(h) - h / 2)  # (h,) centred
    ramp_x = gx * (_coords(w) - w / 2)  # (w,)
    shade = (ramp_y[:, None] + 1.0) + ramp_x  # (h, w) brightness ramp
    paint = np.array(colour, dtype=np.float32)[:, None, None] * shade  # (3, h, w)
    np.copyto(image[:, box[0], box[1]], paint, where=inside)
