"""Real photographs that ship inside scikit-image, as tensors: no download needed.

References
----------
- S. van der Walt et al., "scikit-image: image processing in Python", PeerJ 2014;
  ``skimage.data`` lists each image's source and licence.
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib._checks import check_choice, check_int

__all__ = ["PHOTOS", "photo", "camera_image"]

#: Names of the ``skimage.data`` photographs :func:`photo` loads (colour and grey).
PHOTOS = ("astronaut", "coffee", "chelsea", "camera", "coins", "moon", "page", "rocket")


def photo(name: str, size: int | None = None, *, grey: bool = False) -> torch.Tensor:
    """A ``skimage.data`` photograph as a float32 tensor in [0, 1].

    Parameters
    ----------
    name : str
        One of :data:`PHOTOS`.
    size : int, optional
        Resize (antialiased) to ``size x size``; default: the original size.
    grey : bool
        Return one luminance channel ``(H, W)`` instead of ``(3, H, W)``.

    Returns
    -------
    torch.Tensor, shape (3, H, W), or (H, W) with ``grey=True``

    Examples
    --------
    >>> photo("astronaut", 64).shape, photo("camera", 32, grey=True).shape
    (torch.Size([3, 64, 64]), torch.Size([32, 32]))
    """
    import skimage.data
    from skimage.color import gray2rgb, rgb2gray
    from skimage.transform import resize

    check_choice("name", name, PHOTOS)
    img = getattr(skimage.data, name)()
    img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    if img.ndim == 3 and img.shape[-1] == 4:
        img = img[..., :3]  # drop the alpha channel
    img = rgb2gray(img) if grey and img.ndim == 3 else img
    img = gray2rgb(img) if not grey and img.ndim == 2 else img
    if size is not None:
        size = check_int("size", size, 1)
        img = resize(img, (size, size), anti_aliasing=True)  # (size, size[, 3])
    img = np.clip(img, 0.0, 1.0).astype(np.float32)
    out = torch.from_numpy(np.ascontiguousarray(img))
    return out if grey else out.permute(2, 0, 1).contiguous()  # (H, W, 3) -> (3, H, W)


def camera_image(size: int = 128) -> torch.Tensor:
    """``skimage.data.camera()`` resized to ``size x size``: grey, float32 in [0, 1], ``(H, W)``.

    Examples
    --------
    >>> camera_image(64).shape
    torch.Size([64, 64])
    """
    return photo("camera", size, grey=True)
