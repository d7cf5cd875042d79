"""course_lib.datasets.images (scikit-image photographs) and stack_samples."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from course_lib.datasets import PHOTOS, ShapesDataset, camera_image, photo, stack_samples


@pytest.mark.parametrize("name", PHOTOS)
def test_every_photo_loads_as_rgb_and_grey(name):
    rgb, grey = photo(name, 32), photo(name, 32, grey=True)
    assert rgb.shape == (3, 32, 32) and grey.shape == (32, 32)
    for t in (rgb, grey):
        assert t.dtype == torch.float32 and 0 <= float(t.min()) and float(t.max()) <= 1


def test_photo_without_resize_is_the_original_scaled_to_one():
    original = skimage.data.astronaut()  # (512, 512, 3) uint8
    out = photo("astronaut")
    assert out.shape == (3, *original.shape[:2])
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), original / 255.0, atol=1e-6)


def test_camera_image_is_the_grey_camera_photo():
    np.testing.assert_allclose(camera_image(512).numpy(), skimage.data.camera() / 255.0,
                               atol=1e-6)
    assert camera_image().shape == (128, 128)


def test_photo_errors():
    with pytest.raises(ValueError, match="name must be one of .* got 'lena'"):
        photo("lena")
    with pytest.raises(ValueError, match="size must be an int >= 1, got 0"):
        photo("coins", 0)
    with pytest.raises(TypeError, match="size must be an int, got 32.0"):
        photo("coins", 32.0)


def test_stack_samples_equals_the_loop():
    ds = ShapesDataset("val", 6, image_size=32)
    images, masks = stack_samples(ds, 3, start=2)
    assert torch.equal(images, torch.stack([ds[i][0] for i in range(2, 5)]))
    assert torch.equal(masks, torch.stack([ds[i][1] for i in range(2, 5)]))
    assert stack_samples(ds)[0].shape == (6, 3, 32, 32)


def test_stack_samples_errors():
    ds = ShapesDataset("val", 4, image_size=32)
    with pytest.raises(ValueError, match=r"n must be an int in \[1, 2\], got 3"):
        stack_samples(ds, 3, start=2)
    with pytest.raises(ValueError, match=r"start must be an int in \[0, 4\]"):
        stack_samples(ds, 1, start=5)
    with pytest.raises(ValueError, match="no sample from index 4"):
        stack_samples(ds, start=4)
    with pytest.raises(TypeError, match="dataset must support len"):
        stack_samples(iter([1, 2]))
    with pytest.raises(TypeError, match="dataset items must be tuples"):
        stack_samples([torch.zeros(2), torch.zeros(2)], 2)
