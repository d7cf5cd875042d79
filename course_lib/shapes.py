"""ShapesDataset: a procedurally generated segmentation dataset that needs no download.

Every sample is drawn from ``(seed, split, index)`` alone, so nothing is stored and the same
sample comes back on every machine. Shapes (circle, square, triangle) get a colour drawn
independently of their class, on a textured and noisy background, with random scale,
rotation and partial occlusion: the class is in the *shape*, never in the colour.

References
----------
- The "shapes" toy datasets of the Mask R-CNN tutorials (Matterport, torchvision) inspired
  this one; this generator is written from scratch and vectorised with NumPy.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["CLASSES", "NUM_CLASSES", "SPLITS", "ShapesDataset", "collate_detection"]

#: Class names; index 0 is the background, ``num_classes`` counts it.
CLASSES: tuple[str, ...] = ("background", "circle", "square", "triangle")
NUM_CLASSES: int = len(CLASSES)
#: Default number of samples per split.
SPLITS: dict[str, int] = {"train": 2000, "val": 200, "test": 200}
_SPLIT_ID = {"train": 0, "val": 1, "test": 2}
_MIN_VISIBLE = 0.4  # an occluded shape keeps at least this fraction of its area visible
_MIN_PIXELS = 12  # ... and at least this many pixels
_TRIES = 8  # placement attempts per shape before giving up on it


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates ``(ys, xs)``, each of shape ``(size, size)``."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    return ys, xs


class ShapesDataset(Dataset):
    """Coloured circles, squares and triangles on textured, noisy backgrounds.

    Parameters
    ----------
    split : {"train", "val", "test"}
        Which split. Splits are drawn from disjoint random streams, so they never share a sample.
    length : int, optional
        Number of samples. Defaults to ``SPLITS[split]`` (2000 / 200 / 200).
    image_size : int
        Height and width of the square images, between 16 and 1024.
    seed : int
        Dataset seed: the same ``(seed, split, index)`` always gives the same sample.
    min_shapes, max_shapes : int
        Number of shapes per image, drawn uniformly in ``[min_shapes, max_shapes]``
        (``0 <= min_shapes <= max_shapes <= 16``).
    scale : tuple of float
        ``(low, high)`` range of a shape's diameter as a fraction of ``image_size``,
        ``0 < low <= high <= 1``.
    class_probs : sequence of float, optional
        Probability of each shape class (circle, square, triangle); uniform by default.
        Use it to build class-imbalanced variants.
    noise : float
        Standard deviation of the additive Gaussian pixel noise, in ``[0, 0.5]``.
    target : {"semantic", "instance"}
        What ``__getitem__`` returns next to the image (see Returns).

    Returns
    -------
    image : torch.Tensor, shape (3, H, W), float32 in [0, 1]
    mask : torch.Tensor, shape (H, W), int64
        With ``target="semantic"``: the class of every pixel (0 is background).
    target : dict
        With ``target="instance"``: torchvision detection targets: ``boxes`` (N, 4) float32
        as ``(x1, y1, x2, y2)`` with exclusive right/bottom edges, ``labels`` (N,) int64 in
        ``1..3``, ``masks`` (N, H, W) uint8 (the visible part of each instance), ``area``
        (N,) float32, ``iscrowd`` (N,) int64 and ``image_id`` int.

    Examples
    --------
    >>> ds = ShapesDataset("train", length=10, image_size=64, seed=0)
    >>> image, mask = ds[0]
    >>> tuple(image.shape), image.dtype, tuple(mask.shape), mask.dtype
    ((3, 64, 64), torch.float32, (64, 64), torch.int64)
    >>> bool(torch.equal(ds[3][0], ShapesDataset("train", length=10, seed=0)[3][0]))
    True
    """

    classes = CLASSES
    num_classes = NUM_CLASSES

    def __init__(
        self,
        split: str = "train",
        length: int | None = None,
        *,
        image_size: int = 64,
        seed: int = 0,
        min_shapes: int = 1,
        max_shapes: int = 4,
        scale: tuple[float, float] = (0.2, 0.5),
        class_probs=None,
        noise: float = 0.05,
        target: str = "semantic",
    ) -> None:
        if split not in _SPLIT_ID:
            raise ValueError(f"split must be one of {tuple(_SPLIT_ID)}, got {split!r}")
        length = SPLITS[split] if length is None else length
        _check_int("length", length, 0, None)
        _check_int("image_size", image_size, 16, 1024)
        _check_int("seed", seed, 0, 2**32 - 1)
        _check_int("min_shapes", min_shapes, 0, 16)
        _check_int("max_shapes", max_shapes, 0, 16)
        if min_shapes > max_shapes:
            raise ValueError(
                f"min_shapes ({min_shapes}) must be <= max_shapes ({max_shapes}); "
                "swap them or raise max_shapes"
            )
        try:
            low, high = (float(v) for v in scale)
        except (TypeError, ValueError):
            raise ValueError(f"scale must be a pair (low, high) of floats, got {scale!r}") from None
        if not 0 < low <= high <= 1:
            raise ValueError(
                f"scale must satisfy 0 < low <= high <= 1 (fractions of image_size), got {scale!r}"
            )
        if low * image_size < 4:
            raise ValueError(
                f"scale low={low} gives shapes of {low * image_size:.1f} px on {image_size} px "
                "images; shapes need at least 4 px: raise scale[0] or image_size"
            )
        n_shape = NUM_CLASSES - 1
        if class_probs is None:
            probs = np.full(n_shape, 1.0 / n_shape)
        else:
            probs = np.asarray(class_probs, dtype=np.float64)
            if probs.shape != (n_shape,) or (probs < 0).any() or probs.sum() <= 0:
                raise ValueError(
                    f"class_probs must be {n_shape} non-negative numbers (circle, square, "
                    f"triangle) with a positive sum, got {class_probs!r}"
                )
            probs = probs / probs.sum()
        if not 0 <= float(noise) <= 0.5:
            raise ValueError(f"noise must be in [0, 0.5], got {noise!r}")
        if target not in ("semantic", "instance"):
            raise ValueError(f"target must be 'semantic' or 'instance', got {target!r}")

        self.split, self.length, self.image_size, self.seed = split, int(length), image_size, seed
        self.min_shapes, self.max_shapes = min_shapes, max_shapes
        self.scale, self.class_probs, self.noise, self.target = (low, high), probs, noise, target
        self._cum_probs = np.cumsum(probs)[:-1]  # inverse-CDF sampling of the class

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (
            f"ShapesDataset(split={self.split!r}, length={self.length}, "
            f"image_size={self.image_size}, seed={self.seed}, target={self.target!r})"
        )

    def __getitem__(self, index: int):
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        image, labels, visible = self._render(int(index))
        image_t = torch.from_numpy(image)
        if self.target == "semantic":
            mask = np.zeros((self.image_size, self.image_size), dtype=np.int64)
            for label, vis in zip(labels, visible):
                mask[vis] = label
            return image_t, torch.from_numpy(mask)
        return image_t, _instance_target(labels, visible, self.image_size, index)

    # ------------------------------------------------------------------ generation
    def _rng(self, index: int) -> np.random.Generator:
        # One independent stream per (seed, split, index): splits cannot collide.
        return np.random.default_rng([self.seed, _SPLIT_ID[self.split], index])

    def _render(self, index: int):
        """Return image (3, H, W) float32, shape labels, visible boolean masks (H, W)."""
        rng = self._rng(index)
        size = self.image_size
        image, bg_mean = _background(rng, size)
        n = int(rng.integers(self.min_shapes, self.max_shapes + 1))
        labels: list[int] = []
        keep: list[float] = []  # pixels each shape must keep visible: a share of its area
        counts: list[int] = []  # pixels each shape has visible now
        visible: list[np.ndarray] = []  # (H, W) bool: what is left of each shape
        for _ in range(n):
            for _attempt in range(_TRIES):
                label = int(np.searchsorted(self._cum_probs, rng.random(), side="right")) + 1
                inside, box = _raster(rng, label, size, self.scale)  # (h, w) bool, its box
                area = int(np.count_nonzero(inside))
                if area < _MIN_PIXELS:
                    continue
                # Occlusion is allowed, but every earlier shape must stay recognisable.
                covered = [int(np.count_nonzero(v[box] & inside)) for v in visible]
                if all(c - hidden >= k for c, hidden, k in zip(counts, covered, keep)):
                    break
            else:
                continue
            for i, hidden in enumerate(covered):
                if hidden:
                    visible[i][box] &= ~inside
                    counts[i] -= hidden
            full = np.zeros((size, size), dtype=bool)
            full[box] = inside
            visible.append(full)
            counts.append(area)
            labels.append(label)
            keep.append(max(_MIN_VISIBLE * area, _MIN_PIXELS))
            _paint(rng, image, inside, box, bg_mean)
        if self.noise > 0:
            # A random window of a fixed Gaussian field: i.i.d. N(0, 1) pixels, 10x cheaper
            # than drawing 3*H*W fresh normals for every sample.
            oy, ox = rng.integers(0, 3 * size, size=2)
            image += self.noise * _noise_bank(size)[:, oy : oy + size, ox : ox + size]
        np.clip(image, 0.0, 1.0, out=image)
        return image, labels, visible


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Standard normal noise, shape (3, 4 * size, 4 * size), float32, from a fixed seed."""
    return np.random.default_rng(20240601).standard_normal((3, 4 * size, 4 * size), np.float32)


def _check_int(name: str, value, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {allowed}, got {value}")


def _background(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Two random colours blended by an oriented sinusoidal texture: (3, H, W), mean colour."""
    ys, xs = _grid(size)
    c0, c1 = rng.uniform(0.0, 1.0, size=(2, 3)).astype(np.float32)
    theta = float(rng.uniform(0, np.pi))
    freq = float(rng.uniform(1.0, 4.0)) * 2 * np.pi / size
    phase = float(rng.uniform(0, 2 * np.pi))
    # Python floats keep the arithmetic in float32 (NumPy 2 promotion rules).
    proj = (freq * math.cos(theta)) * xs + (freq * math.sin(theta)) * ys + phase  # (H, W)
    t = np.sin(proj)
    t *= 0.5
    t += 0.5  # (H, W) in [0, 1]
    image = c0[:, None, None] + (c1 - c0)[:, None, None] * t[None]  # (3, H, W)
    return image, (c0 + c1) / 2


def _raster(rng: np.random.Generator, label: int, size: int, scale):
    """One shape of class ``label`` at a random place, scale and angle.

    Returns the boolean mask (h, w) of the shape inside its bounding box and the box's
    slices into the (H, W) image: all later work touches only the box.
    """
    u_r, u_y, u_x, u_a = rng.random(4).tolist()  # one draw for scale, centre and angle
    r = (scale[0] + (scale[1] - scale[0]) * u_r) * size / 2  # half the diameter, in pixels
    cy, cx = r * 0.5 + (size - r) * u_y, r * 0.5 + (size - r) * u_x
    angle = 2 * math.pi * u_a
    reach = 1.25 * r  # every shape fits in a disc of this radius around its centre
    y0, y1 = max(int(cy - reach), 0), min(int(cy + reach) + 2, size)
    x0, x1 = max(int(cx - reach), 0), min(int(cx + reach) + 2, size)
    box = (slice(y0, y1), slice(x0, x1))
    coords = _grid(size)[1][0]  # (W,) pixel centres 0.5, 1.5, ...
    dy = (coords[y0:y1] - cy)[:, None]  # (h, 1) offsets from the centre
    dx = (coords[x0:x1] - cx)[None, :]  # (1, w)
    if label == 1:  # circle
        inside = dy * dy + dx * dx <= r * r
    else:
        cos, sin = math.cos(angle), math.sin(angle)
        u, v = cos * dx + sin * dy, cos * dy - sin * dx  # rotated frame
        if label == 2:  # square of half-side 0.886 r: the same area as the circle (sqrt(pi)/2)
            h = r * 0.886
            inside = (np.abs(u) <= h) & (np.abs(v) <= h)
        else:  # equilateral triangle, inradius 0.6 r (circumradius 1.2 r): three half-planes
            inside = u <= 0.6 * r
            for a in (2 * math.pi / 3, 4 * math.pi / 3):
                inside &= math.cos(a) * u + math.sin(a) * v <= 0.6 * r
    return inside, box


def _paint(rng: np.random.Generator, image: np.ndarray, inside, box, bg_mean) -> None:
    """Fill the shape ``inside`` its ``box`` with a random colour and a shading ramp.

    The colour is drawn independently of the class, but far enough from the background.
    """
    draws = rng.random(26, dtype=np.float32)  # 8 candidate colours and a shading ramp
    candidates = draws[:24].reshape(8, 3)  # (8, RGB)
    far = np.abs(candidates - bg_mean).sum(1) > 0.6
    colour = candidates[int(np.argmax(far))]  # the first candidate far from the background
    gy, gx = ((float(g) - 0.5) * 0.6 / image.shape[1] for g in draws[24:])
    h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
    ramp_y = gy * (np.arange(h, dtype=np.float32) - (h - 1) / 2)  # (h,)
    ramp_x = gx * (np.arange(w, dtype=np.float32) - (w - 1) / 2)  # (w,)
    shade = 1.0 + ramp_y[:, None] + ramp_x[None, :]  # (h, w) brightness ramp
    region = image[:, box[0], box[1]]  # (3, h, w) view into the image
    np.copyto(region, colour[:, None, None] * shade[None], where=inside[None])


def _instance_target(labels, visible, size: int, index: int) -> dict:
    n = len(labels)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    boxes = np.zeros((n, 4), dtype=np.float32)
    for i, vis in enumerate(visible):
        masks[i] = vis
        rows, cols = np.any(vis, axis=1), np.any(vis, axis=0)
        y0, y1 = np.flatnonzero(rows)[[0, -1]]
        x0, x1 = np.flatnonzero(cols)[[0, -1]]
        boxes[i] = (x0, y0, x1 + 1, y1 + 1)
    return {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(n),
        "masks": torch.from_numpy(masks),
        "area": torch.from_numpy(masks.reshape(n, -1).sum(1).astype(np.float32)),
        "iscrowd": torch.zeros(n, dtype=torch.int64),
        "image_id": int(index),
    }


def collate_detection(batch):
    """Collate ``(image, target)`` pairs into a tuple of images and a tuple of targets.

    torchvision's detection models take lists, since every image has its own number of
    instances: ``DataLoader(ds, batch_size=4, collate_fn=collate_detection)``.
    """
    return tuple(zip(*batch))
