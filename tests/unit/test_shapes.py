import hashlib

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from course_lib.datasets import CLASSES, NUM_CLASSES, ShapesDataset, collate_detection


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.numpy().tobytes()).hexdigest()


def test_semantic_sample_follows_conventions():
    ds = ShapesDataset("train", length=20, image_size=48, seed=1)
    image, mask = ds[0]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert mask.shape == (48, 48) and mask.dtype == torch.int64
    assert 0 <= image.min() and image.max() <= 1
    assert set(mask.unique().tolist()) <= set(range(NUM_CLASSES))
    assert CLASSES[0] == "background" and {"circle", "square", "triangle"} <= set(CLASSES)
    assert ds[-1][1].shape == (48, 48) and len(ds) == 20


def test_deterministic_from_seed_split_index():
    a = ShapesDataset("val", length=5, seed=7)
    b = ShapesDataset("val", length=5, seed=7)
    for i in range(5):
        assert torch.equal(a[i][0], b[i][0]) and torch.equal(a[i][1], b[i][1])
    assert not torch.equal(a[0][0], ShapesDataset("val", length=5, seed=8)[0][0])


def test_splits_never_overlap():
    digests = {s: {_digest(ShapesDataset(s, length=200, seed=0)[i][0]) for i in range(200)}
               for s in ("train", "val", "test")}
    assert all(len(d) == 200 for d in digests.values())
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"] and not digests["val"] & digests["test"]


def test_every_class_appears_and_colour_does_not_give_the_class():
    ds = ShapesDataset("train", length=300, seed=0)
    means = {c: [] for c in range(1, NUM_CLASSES)}
    for i in range(300):
        image, mask = ds[i]
        for c in mask.unique().tolist():
            if c:
                means[c].append(image[:, mask == c].mean(1))
    for c, values in means.items():
        assert len(values) > 50, f"class {CLASSES[c]} too rare"
        spread = torch.stack(values).std(0)
        assert (spread > 0.2).all(), f"{CLASSES[c]} colours cluster: {spread}"
    # Mean colours per class are alike: colour alone cannot separate the classes.
    centres = torch.stack([torch.stack(v).mean(0) for v in means.values()])
    assert torch.cdist(centres, centres).max() < 0.15


def test_scale_and_count_parameters():
    big = ShapesDataset("train", length=30, seed=0, min_shapes=1, max_shapes=1, scale=(0.8, 0.9))
    small = ShapesDataset("train", length=30, seed=0, min_shapes=1, max_shapes=1,
                          scale=(0.2, 0.25))
    fg = lambda ds: np.mean([(ds[i][1] > 0).float().mean().item() for i in range(30)])
    assert fg(big) > 4 * fg(small)
    empty = ShapesDataset("train", length=3, min_shapes=0, max_shapes=0)
    assert all((empty[i][1] == 0).all() for i in range(3))


def test_class_probs_make_imbalance():
    ds = ShapesDataset("train", length=200, seed=0, class_probs=(0.9, 0.05, 0.05))
    counts = torch.bincount(torch.stack([ds[i][1] for i in range(200)]).flatten(), minlength=4)
    assert counts[1] > 5 * counts[2] and counts[1] > 5 * counts[3]


def test_instance_targets_match_semantic_mask():
    sem = ShapesDataset("train", length=20, seed=2)
    ins = ShapesDataset("train", length=20, seed=2, target="instance")
    for i in range(20):
        image, target = ins[i]
        assert torch.equal(image, sem[i][0])
        n = len(target["labels"])
        assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, 64, 64)
        assert target["masks"].dtype == torch.uint8 and target["labels"].dtype == torch.int64
        rebuilt = torch.zeros(64, 64, dtype=torch.int64)
        for label, m in zip(target["labels"], target["masks"]):
            assert not (rebuilt[m.bool()] > 0).any(), "visible instance masks overlap"
            rebuilt[m.bool()] = label
        assert torch.equal(rebuilt, sem[i][1])
        for box, m in zip(target["boxes"], target["masks"]):
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert torch.equal(target["area"], target["masks"].flatten(1).sum(1).float())


def test_detection_collate_in_dataloader():
    ds = ShapesDataset("train", length=4, target="instance")
    images, targets = next(iter(DataLoader(ds, batch_size=4, collate_fn=collate_detection)))
    assert len(images) == 4 and len(targets) == 4 and "boxes" in targets[0]


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"split": "dev"}, ValueError, "split must be one of"),
    ({"length": -1}, ValueError, "length must be an int >= 0"),
    ({"length": 2.0}, TypeError, "length must be an int"),
    ({"image_size": 8}, ValueError, r"image_size must be an int in \[16, 1024\]"),
    ({"image_size": 4096}, ValueError, r"image_size must be an int in \[16, 1024\]"),
    ({"seed": -3}, ValueError, "seed must be an int in"),
    ({"min_shapes": 3, "max_shapes": 2}, ValueError, r"min_shapes \(3\) must be <= max_shapes"),
    ({"max_shapes": 17}, ValueError, r"max_shapes must be an int in \[0, 16\]"),
    ({"scale": (0.5, 0.2)}, ValueError, "0 < low <= high <= 1"),
    ({"scale": (0, 0.5)}, ValueError, "0 < low <= high <= 1"),
    ({"scale": 0.5}, ValueError, "scale must be a pair"),
    ({"scale": (0.05, 0.1), "image_size": 32}, ValueError, "at least 4 px"),
    ({"class_probs": (1, 1)}, ValueError, "class_probs must be 3 non-negative"),
    ({"class_probs": (-1, 1, 1)}, ValueError, "class_probs must be 3 non-negative"),
    ({"noise": 0.9}, ValueError, r"noise must be in \[0, 0.5\]"),
    ({"target": "panoptic"}, ValueError, "target must be 'semantic' or 'instance'"),
])
def test_invalid_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ShapesDataset(**kwargs)


def test_index_errors():
    ds = ShapesDataset("test", length=3)
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(TypeError, match="index must be an int"):
        ds["0"]
    assert "ShapesDataset(split='test'" in repr(ds)


def test_same_samples_from_threads_and_worker_processes():
    # Each sample owns a Philox stream, and each thread its own generator: the order and the
    # place a sample is drawn in never change it.
    from concurrent.futures import ThreadPoolExecutor

    ds = ShapesDataset("val", length=24, image_size=32, seed=3)
    serial = [_digest(ds[i][0]) + _digest(ds[i][1]) for i in range(24)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda i: _digest(ds[i][0]) + _digest(ds[i][1]), range(24)))
    assert threaded == serial
    loader = DataLoader(ds, batch_size=6, num_workers=2)
    images, masks = zip(*loader)
    images, masks = torch.cat(images), torch.cat(masks)
    assert [_digest(images[i]) + _digest(masks[i]) for i in range(24)] == serial


def test_polygons_have_the_expected_area():
    # A lone square has the circle's area (half-side 0.886 r); a triangle of inradius 0.6 r has
    # area 3 sqrt(3) (0.6 r)^2: the analytic areas within rasterisation error.
    import math

    for label, factor in ((1, math.pi), (2, 4 * 0.886**2), (3, 3 * math.sqrt(3) * 0.36)):
        ds = ShapesDataset("train", length=40, image_size=128, min_shapes=1, max_shapes=1,
                           scale=(0.6, 0.6), class_probs=[label == 1, label == 2, label == 3])
        areas = [int((ds[i][1] == label).sum()) for i in range(40)]
        r = 0.6 * 128 / 2
        # shapes near the border are clipped, so compare with the largest (unclipped) ones
        assert abs(max(areas) - factor * r * r) / (factor * r * r) < 0.03, (label, max(areas))
