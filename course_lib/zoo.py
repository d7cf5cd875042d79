"""The model zoo: shipped checkpoints, their manifest, and the recipes that retrain them.

``data/checkpoints/MANIFEST.json`` holds one record per checkpoint: the builder (a dotted
path under ``course_lib.models``) and its kwargs, the data (``ShapesDataset`` arguments), the
training recipe (:func:`course_lib.train.fit` kwargs), the validation scores, the history, the
file's sha256 and size, the training time and the torch version. Checkpoints are plain float32
``state_dict``s loaded with ``torch.load(..., weights_only=True)`` after the sha256 check.

Command line::

    python -m course_lib.zoo list
    python -m course_lib.zoo train single_scale      # or: train --all

References
----------
- PyTorch, "Saving and loading models" and ``torch.load(weights_only=True)``:
  https://pytorch.org/docs/stable/notes/serialization.html
- The recipes' models: C. Farabet et al., TPAMI 2013; P. O. Pinheiro, R. Collobert, ICML 2014
  (see :mod:`course_lib.models.context`); J. Long et al., CVPR 2015 (FCN); O. Ronneberger et
  al., MICCAI 2015 (U-Net); V. Badrinarayanan et al., TPAMI 2017 (SegNet); L.-C. Chen et al.,
  ECCV 2018 (DeepLabv3+); S. Jegou et al., CVPRW 2017 (Tiramisu).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from course_lib.utils import atomic_save, num_params, seed_everything

__all__ = ["CHECKPOINT_DIR", "RECIPES", "names", "manifest", "load", "train", "sha256",
           "build", "main"]

#: The repository's home of the checkpoints (a checkout, or an editable install of it).
_REPO_DIR = Path(__file__).resolve().parents[1] / "data" / "checkpoints"


def _shipped_dir() -> Path:
    """The package's ``checkpoints`` folder when installed from a wheel (package data, mapped
    from ``data/checkpoints`` by pyproject.toml), else the repository's ``data/checkpoints``."""
    from importlib.resources import files

    packaged = Path(str(files("course_lib") / "checkpoints"))
    return packaged if (packaged / "MANIFEST.json").is_file() else _REPO_DIR


#: Where the shipped checkpoints and ``MANIFEST.json`` live.
CHECKPOINT_DIR = _shipped_dir()
MANIFEST = "MANIFEST.json"
_VAL = {"split": "val", "length": 200, "image_size": 64, "seed": 0}
_TRAIN = {"split": "train", "length": 2000, "image_size": 64, "seed": 0}
_CONTEXT = "course_lib.models.context."
_ALL_CONV = "course_lib.models.simple.all_conv_net"
#: Lecture 04, section 3: shapes of every size to train on, small ones to validate on.
_RF_DATA = {"train": {"split": "train", "length": 2000, "image_size": 32, "seed": 0,
                      "scale": [0.25, 0.95], "min_shapes": 1, "max_shapes": 3},
            "val": {"split": "val", "length": 200, "image_size": 32, "seed": 0,
                    "scale": [0.25, 0.35], "min_shapes": 2, "max_shapes": 5}}
#: Lecture 04, section 4: small shapes, triangles rare.
_IMB_DATA = {split: {"split": split, "length": length, "image_size": 32, "seed": 0,
                     "class_probs": [0.6, 0.3, 0.1], "scale": [0.15, 0.35]}
             for split, length in (("train", 2000), ("val", 200))}
_IMB_NET = {"num_layers": 4, "width": 32, "num_classes": 4, "dilation": [1, 2, 4, 8]}
#: Lecture 07: one recipe for the four encoder-decoders. The generator gives data for free:
#: 5000 steps of 16 images see 80,000 training images once each (no epoch repeats; the FCNs'
#: 2,000 images let a U-Net overfit near 0.96 mIoU), cosine decay of the learning rate. Half
#: as many steps left the best of the four at 0.951 mIoU; 5000 reach 0.974 (U-Net).
_ENCDEC_STEPS = 5000
_ENCDEC_BATCH = 16
_ENCDEC_DATA = {"train": {"split": "train", "length": _ENCDEC_STEPS * _ENCDEC_BATCH,
                          "image_size": 64, "seed": 0}, "val": _VAL}
_ENCDEC_FIT = {"steps": _ENCDEC_STEPS, "log_every": 1000, "lr": 3e-3,
               "batch_size": _ENCDEC_BATCH, "optimizer": "adam", "schedule": "cosine",
               "seed": 0, "loss": "ce"}
_ENCDEC = {
    "unet": ("U-Net (Ronneberger et al. 2015), padded, width 16, depth 3",
             "unet.unet", {"num_classes": 4, "width": 16, "depth": 3}),
    "segnet": ("SegNet (Badrinarayanan et al. 2017), pooling indices, width 16, depth 4",
               "segnet.segnet", {"num_classes": 4, "width": 16, "depth": 4}),
    "deeplabv3plus": ("DeepLabv3+ (Chen et al. 2018), output stride 8, ASPP rates 1-2-3, "
                      "width 16", "deeplab.deeplabv3plus", {"num_classes": 4, "width": 16}),
    "tiramisu": ("Tiramisu FC-DenseNet (Jegou et al. 2017), growth 8, blocks 1-2-3, bottleneck 3",
                 "tiramisu.tiramisu", {"num_classes": 4, "stem": 12, "growth": 8,
                                       "blocks": [1, 2, 3], "bottleneck": 3}),
}
_STEPS = {"steps": 2000, "log_every": 250, "lr": 3e-3, "batch_size": 16, "optimizer": "adam",
          "seed": 0}


class _WeightedCE(str):
    """A class-weighted cross-entropy that :func:`course_lib.train.fit` calls as its ``loss``.

    A ``str`` (``"weighted_ce:[w0, w1, ...]"``), so the recipe stays plain JSON in the manifest.
    """

    def __new__(cls, weight):
        weight = tuple(float(w) for w in weight)
        self = super().__new__(cls, "weighted_ce:" + json.dumps(list(weight)))
        self.weight = weight
        return self

    def __getnewargs__(self):
        return (self.weight,)

    def __call__(self, logits, target):
        from course_lib.losses import weighted_cross_entropy

        weight = torch.tensor(self.weight, dtype=logits.dtype, device=logits.device)
        return weighted_cross_entropy(logits, target, weight)


#: Median-frequency weights of 200 training masks of ``_IMB_DATA`` (lecture 04 recomputes them).
IMBALANCE_WEIGHTS = (0.0895, 0.878, 1.1614, 2.6803)

#: How every shipped checkpoint is made. ``python -m course_lib.zoo train NAME`` replays it;
#: the manifest copies it next to the results (a unit test checks that they agree).
RECIPES: dict[str, dict] = {
    "single_scale": {
        "description": "single-scale convnet (16 px field), lecture 05 baseline",
        "builder": _CONTEXT + "single_scale_net",
        "kwargs": {"num_classes": 4, "width": 24, "hidden": 32, "norm": "batch"},
        "data": {"train": _TRAIN, "val": _VAL},
        "fit": {"epochs": 8, "lr": 3e-3, "batch_size": 16, "optimizer": "adam", "seed": 0,
                "loss": "ce"},
        "num_threads": 1,
    },
    "multiscale": {
        "description": "multi-scale convnet, shared features on a (1, 1/2, 1/4) pyramid",
        "builder": _CONTEXT + "multiscale_net",
        "kwargs": {"num_classes": 4, "width": 24, "hidden": 32, "scales": [1.0, 0.5, 0.25],
                   "norm": "batch"},
        "data": {"train": _TRAIN, "val": _VAL},
        "fit": {"epochs": 7, "lr": 3e-3, "batch_size": 16, "optimizer": "adam", "seed": 0,
                "loss": "ce"},
        "num_threads": 1,
    },
    "recurrent": {
        "description": "recurrent convnet, 3 iterations fed back the class probabilities; "
                       "shared convolutions, one BatchNorm per iteration",
        "builder": _CONTEXT + "recurrent_cnn",
        "kwargs": {"num_classes": 4, "iterations": 3, "width": 16, "hidden": 32, "norm": "batch",
                   "iteration_norms": True},
        "data": {"train": _TRAIN, "val": _VAL},
        "fit": {"epochs": 10, "lr": 3e-3, "batch_size": 16, "optimizer": "adam", "seed": 0,
                "loss": "ce"},
        "num_threads": 1,
    },
    "allconv_rf13": {
        "description": "all-conv net, six 3x3 convs (13 px field), lecture 04 field experiment",
        "builder": _ALL_CONV,
        "kwargs": {"num_layers": 6, "width": 32, "num_classes": 4},
        "data": _RF_DATA,
        "fit": {**_STEPS, "loss": "ce"},
        "num_threads": 1,
    },
    "imbalance_ce": {
        "description": "dilated all-conv net (31 px field), rare triangles, cross-entropy",
        "builder": _ALL_CONV,
        "kwargs": _IMB_NET,
        "data": _IMB_DATA,
        "fit": {**_STEPS, "loss": "ce"},
        "num_threads": 1,
    },
    "imbalance_wce": {
        "description": "dilated all-conv net (31 px field), rare triangles, median-frequency "
                       "weighted cross-entropy",
        "builder": _ALL_CONV,
        "kwargs": _IMB_NET,
        "data": _IMB_DATA,
        "fit": {**_STEPS, "loss": _WeightedCE(IMBALANCE_WEIGHTS)},
        "num_threads": 1,
    },
    "imbalance_focal": {
        "description": "dilated all-conv net (31 px field), rare triangles, focal loss (gamma 2)",
        "builder": _ALL_CONV,
        "kwargs": _IMB_NET,
        "data": _IMB_DATA,
        "fit": {**_STEPS, "loss": "focal"},
        "num_threads": 1,
    },
    "erf_allconv": {
        "description": "all-conv net, eight 3x3 convs (17 px field), lecture 02 effective field",
        "builder": _ALL_CONV,
        "kwargs": {"num_layers": 8, "width": 16, "num_classes": 4},
        "data": {"train": {"split": "train", "length": 2000, "image_size": 32, "seed": 0},
                 "val": {"split": "val", "length": 200, "image_size": 32, "seed": 0}},
        "fit": {**_STEPS, "steps": 1500, "loss": "ce"},
        "num_threads": 1,
    },
    **{f"fcn{v}": {
        "description": f"FCN-{v} (Long et al. 2015) on a VGG-style backbone of width 6, "
                       "lecture 06",
        "builder": f"course_lib.models.fcn.fcn{v}",
        "kwargs": {"num_classes": 4, "width": 6},
        "data": {"train": _TRAIN, "val": _VAL},
        "fit": {"steps": 3000, "log_every": 500, "lr": 3e-3, "batch_size": 16,
                "optimizer": "adam", "seed": 0, "loss": "ce"},  # one recipe for the three
        "num_threads": 1,
    } for v in ("32s", "16s", "8s")},
    **{name: {
        "description": f"{text}, lecture 07",
        "builder": f"course_lib.models.{builder}",
        "kwargs": kwargs,
        "data": _ENCDEC_DATA,
        "fit": _ENCDEC_FIT,  # one recipe for the four
        "num_threads": 1,
    } for name, (text, builder, kwargs) in _ENCDEC.items()},
}


def _dir(checkpoint_dir, write: bool = False) -> Path:
    if checkpoint_dir is not None:
        return Path(checkpoint_dir)
    if write and CHECKPOINT_DIR != _REPO_DIR:
        raise PermissionError(
            f"course_lib is installed as a package: its checkpoints in {CHECKPOINT_DIR} are "
            "read-only package data. Pass out_dir= (command line: --out-dir DIR) to write "
            "the retrained checkpoint elsewhere, and load it with checkpoint_dir=DIR; or "
            "retrain inside a checkout of the repository (make checkpoints).")
    return CHECKPOINT_DIR


def manifest(checkpoint_dir=None) -> dict[str, dict]:
    """All records of ``MANIFEST.json``, by checkpoint name (empty if there is none yet)."""
    path = _dir(checkpoint_dir) / MANIFEST
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def names(checkpoint_dir=None) -> list[str]:
    """Names of the shipped checkpoints, sorted.

    Examples
    --------
    >>> {"single_scale", "multiscale", "recurrent"} <= set(names())
    True
    """
    return sorted(manifest(checkpoint_dir))


def sha256(path) -> str:
    """Hex sha256 digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(builder: str, kwargs: dict) -> nn.Module:
    """Call the model builder named by a dotted path under ``course_lib.models``."""
    if not isinstance(builder, str) or not builder.startswith("course_lib.models."):
        raise ValueError(f"builder must be a dotted path under course_lib.models, got "
                         f"{builder!r}")
    module, _, attr = builder.rpartition(".")
    fn = getattr(importlib.import_module(module), attr, None)
    if fn is None:
        raise ValueError(f"builder {builder!r} does not exist in {module}")
    return fn(**kwargs)


def _record(name: str, checkpoint_dir) -> dict:
    records = manifest(checkpoint_dir)
    if name not in records:
        raise ValueError(f"no checkpoint named {name!r} in {_dir(checkpoint_dir) / MANIFEST}; "
                         f"available: {sorted(records)}")
    return records[name]


def load(name: str, device=None, *, checkpoint_dir=None) -> nn.Module:
    """Build a shipped model and load its checkpoint (sha256 checked), in eval mode.

    Parameters
    ----------
    name : str
        One of :func:`names`.
    device : str or torch.device, optional
        Where to put the model (default: the CPU).
    checkpoint_dir : path, optional
        Directory holding the checkpoint and ``MANIFEST.json`` (default ``data/checkpoints``).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> model = load("single_scale")
    >>> model.training, model(torch.zeros(1, 3, 64, 64)).shape
    (False, torch.Size([1, 4, 64, 64]))
    """
    record = _record(name, checkpoint_dir)
    path = _dir(checkpoint_dir) / record["file"]
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} is missing; rebuild it with "
                                f"`python -m course_lib.zoo train {name}`")
    digest = sha256(path)
    if digest != record["sha256"]:
        raise ValueError(f"sha256 mismatch for {path}: the manifest expects {record['sha256']}, "
                         f"the file has {digest}. The file is corrupted or stale: restore it "
                         f"or retrain with `python -m course_lib.zoo train {name}`")
    model = build(record["builder"], record["kwargs"])
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.to("cpu" if device is None else device).eval()


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def train(name: str, *, out_dir=None, progress: bool = True) -> dict:
    """Retrain checkpoint ``name`` from its recipe; write the file and its manifest record.

    Deterministic: the same recipe, torch version and machine give the same bytes (the
    recipe fixes the seed, the data and the number of CPU threads).

    Parameters
    ----------
    name : str
        A key of :data:`RECIPES`.
    out_dir : path, optional
        Where to write ``<name>.pt`` and update ``MANIFEST.json`` (default ``data/checkpoints``).
    progress : bool
        Show the training progress bar.

    Returns
    -------
    dict
        The manifest record.
    """
    from course_lib.datasets import ShapesDataset, stack_samples
    from course_lib.metrics import boundary_f1
    from course_lib.train import evaluate, fit, predict

    if name not in RECIPES:
        raise ValueError(f"no recipe named {name!r}; available: {sorted(RECIPES)}")
    recipe = copy.deepcopy(RECIPES[name])
    out = _dir(out_dir, write=True)
    out.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe["num_threads"])
    try:
        seed_everything(recipe["fit"]["seed"])
        model = build(recipe["builder"], recipe["kwargs"])
        train_ds = ShapesDataset(**recipe["data"]["train"])
        val_ds = ShapesDataset(**recipe["data"]["val"])
        num_classes = recipe["kwargs"]["num_classes"]
        start = time.perf_counter()
        history = fit(model, train_ds, val_ds, num_classes=num_classes, device="cpu",
                      progress=progress, **recipe["fit"])
        seconds = time.perf_counter() - start
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        path = out / f"{name}.pt"
        atomic_save(state, path)
        model.load_state_dict(torch.load(path, weights_only=True))
        scores = evaluate(model, val_ds, num_classes=num_classes, device="cpu")
        images, masks = stack_samples(val_ds)
        scores["boundary_f1"] = boundary_f1(predict(model, images, device="cpu"), masks,
                                            num_classes=num_classes)
    finally:
        torch.set_num_threads(threads)
    record = {
        **recipe,
        "file": path.name,
        "metrics": {"miou": scores["miou"], "pixel_acc": scores["pixel_acc"],
                    "mean_acc": scores["mean_acc"], "iou": scores["iou"],
                    "boundary_f1": scores["boundary_f1"]},
        "history": history,
        "num_params": num_params(model),
        "sha256": sha256(path),
        "size_bytes": path.stat().st_size,
        "train_seconds": round(seconds, 1),
        "torch_version": torch.__version__,
    }
    record = _json_safe(record)
    records = manifest(out)
    records[name] = record
    atomic_save(json.dumps(records, indent=2, sort_keys=True, allow_nan=False) + "\n",
                out / MANIFEST)
    return record


def main(argv=None) -> int:
    """Command line: ``list`` the checkpoints, or ``train NAME ... | --all``."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.zoo", description=__doc__
                                     .split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show the shipped checkpoints and their scores")
    p_train = sub.add_parser("train", help="retrain checkpoints from their recipes")
    p_train.add_argument("names", nargs="*", help=f"any of {sorted(RECIPES)}")
    p_train.add_argument("--all", action="store_true", help="retrain every recipe")
    p_train.add_argument("--out-dir", default=None, help="default: data/checkpoints")
    args = parser.parse_args(argv)
    if args.command == "list":
        records = manifest()
        print(f"{'name':<14}{'mIoU':>7}{'pix acc':>9}{'params':>9}{'KB':>7}{'train s':>9}  "
              "description")
        for name in sorted(records):
            r = records[name]
            print(f"{name:<14}{r['metrics']['miou']:>7.3f}{r['metrics']['pixel_acc']:>9.3f}"
                  f"{r['num_params']:>9}{r['size_bytes'] / 1024:>7.0f}{r['train_seconds']:>9.0f}"
                  f"  {r['description']}")
        return 0
    if args.all == bool(args.names):
        parser.error("train needs checkpoint names or --all (not both)")
    unknown = sorted(set(args.names) - set(RECIPES))
    if unknown:
        parser.error(f"unknown names {unknown}; available: {sorted(RECIPES)}")
    for name in sorted(RECIPES) if args.all else args.names:
        r = train(name, out_dir=args.out_dir)
        print(f"{name}: mIoU {r['metrics']['miou']:.3f}, pixel acc "
              f"{r['metrics']['pixel_acc']:.3f}, {r['train_seconds']:.0f} s, "
              f"{r['size_bytes']} bytes, sha256 {r['sha256'][:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
