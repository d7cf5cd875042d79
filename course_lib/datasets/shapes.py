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

import bisect
import threading

import numpy as np
import torch
from torch.utils.data import Dataset

from course_lib._checks import check_int
from course_lib.datasets._shapes_draw import _background, _noise_bank, _paint, _raster, _Uniforms

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
        length = check_int("length", length, 0)
        image_size = check_int("image_size", image_size, 16, 1024)
        seed = check_int("seed", seed, 0, 2**32 - 1)
        min_shapes = check_int("min_shapes", min_shapes, 0, 16)
        max_shapes = check_int("max_shapes", max_shapes, 0, 16)
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
        self._key = np.array([seed, _SPLIT_ID[split]], dtype=np.uint64)  # Philox stream
        self._cum_probs = np.cumsum(probs)[:-1].tolist()  # inverse-CDF sampling of the class

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (
            f"ShapesDataset(split={self.split!r}, length={self.length}, "
            f"image_size={self.image_size}, seed={self.seed}, target={self.target!r})"
        )

    def __getitem__(self, index: int):
        index = check_int("index", index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of {self.length}")
        image, labels, owner, mask = self._render(int(index))
        image_t = torch.from_numpy(image)
        if self.target == "semantic":
            return image_t, torch.from_numpy(mask)
        return image_t, _instance_target(labels, owner, index)

    # ------------------------------------------------------------------ generation
    def _uniforms(self, index: int) -> _Uniforms:
        """The stream of uniform floats in [0, 1) that draws sample ``index``.

        Philox is counter-based: the key ``(seed, split)`` picks the stream and the counter
        ``index`` the block, so every sample owns an independent stream and splits never
        collide. Resetting a thread-local generator costs ~4 us, a fresh one ~20 us.
        """
        gen = getattr(_LOCAL, "gen", None)
        if gen is None:
            gen = _LOCAL.gen = np.random.Generator(np.random.Philox(key=[0, 0]))
        state = gen.bit_generator.state
        state["state"] = {
            "counter": np.array([0, index, 0, 0], dtype=np.uint64),
            "key": self._key,
        }
        state["buffer_pos"] = 4  # drop anything buffered from the previous sample
        state["has_uint32"] = 0
        gen.bit_generator.state = state
        return _Uniforms(gen)

    def _render(self, index: int):
        """Return image (3, H, W) float32, shape labels, owner map (H, W) int8 and, for
        semantic targets, the class mask (H, W) int64 (None otherwise).

        ``owner[y, x] = i + 1`` where shape ``i`` is the visible one at that pixel, 0 on the
        background: one int8 map replaces a boolean mask per shape.
        """
        u = self._uniforms(index)
        size = self.image_size
        image, bg_mean = _background(u, size)
        span = self.max_shapes - self.min_shapes + 1
        n = self.min_shapes + min(int(u.take(1)[0] * span), span - 1)
        owner = np.zeros((size, size), dtype=np.int8)  # which shape is visible, 0 = none
        semantic = self.target == "semantic"
        mask = np.zeros((size, size), dtype=np.int64) if semantic else None  # its class
        labels: list[int] = []
        keep: list[float] = []  # pixels each shape must keep visible: a share of its area
        counts: list[int] = []  # pixels each shape has visible now
        for _ in range(n):
            for _attempt in range(_TRIES):
                label = bisect.bisect_right(self._cum_probs, u.take(1)[0]) + 1
                inside, box = _raster(u, label, size, self.scale)  # (h, w) bool, its box
                area = int(np.count_nonzero(inside))
                if area < _MIN_PIXELS:
                    continue
                # Occlusion is allowed, but every earlier shape must stay recognisable.
                under = owner[box][inside]  # (area,) who is visible under the new shape now
                hidden = np.bincount(under, minlength=len(labels) + 1).tolist()[1:]
                if all(c - h >= k for c, h, k in zip(counts, hidden, keep)):
                    break
            else:
                continue
            counts = [c - h for c, h in zip(counts, hidden)]
            owner[box][inside] = len(labels) + 1  # the new shape is on top
            if semantic:
                mask[box][inside] = label
            counts.append(area)
            labels.append(label)
            keep.append(max(_MIN_VISIBLE * area, _MIN_PIXELS))
            _paint(u, image, inside, box, bg_mean)
        if self.noise > 0:
            # A random window of a fixed Gaussian field: i.i.d. N(0, 1) pixels, 10x cheaper
            # than drawing 3*H*W fresh normals for every sample.
            oy, ox = (int(v * 3 * size) for v in u.take(2))
            image += self.noise * _noise_bank(size)[:, oy : oy + size, ox : ox + size]
        np.minimum(np.maximum(image, 0.0, out=image), 1.0, out=image)
        return image, labels, owner, mask


_LOCAL = threading.local()  # one reusable generator per thread (DataLoader threads are safe)


def _instance_target(labels, owner, index: int) -> dict:
    n, size = len(labels), owner.shape[0]
    ids = np.arange(1, n + 1, dtype=np.int8)[:, None, None]  # (N, 1, 1)
    visible = owner[None] == ids  # (N, H, W) bool: the visible part of each shape
    rows, cols = visible.any(axis=2), visible.any(axis=1)  # (N, H), (N, W): occupied lines
    # First occupied line from the start, and from the end (exclusive right/bottom edges).
    y0, x0 = rows.argmax(axis=1), cols.argmax(axis=1)  # (N,)
    y1, x1 = size - rows[:, ::-1].argmax(axis=1), size - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)  # (N, 4)
    return {
        "boxes": torch.from_numpy(boxes),
        "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(n),
        "masks": torch.from_numpy(visible.view(np.uint8)),
        "area": torch.from_numpy(np.bincount(owner.ravel(), minlength=n + 1)[1:]
                                 .astype(np.float32)),  # (N,) visible pixels
        "iscrowd": torch.zeros(n, dtype=torch.int64),
        "image_id": int(index),
    }


def collate_detection(batch):
    """Collate ``(image, target)`` pairs into a tuple of images and a tuple of targets.

    torchvision's detection models take lists, since every image has its own number of
    instances: ``DataLoader(ds, batch_size=4, collate_fn=collate_detection)``.
    """
    return tuple(zip(*batch))
