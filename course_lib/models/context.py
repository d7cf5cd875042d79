"""Context before FCN: single-scale, multi-scale (image pyramid) and recurrent convnets.

Three small scene-labelling networks from 2013-14, sized for 64 x 64 ``ShapesDataset`` images
on a CPU. They share one building block, a feature extractor of four 3x3 convolutions and two
2x2 max-pools (receptive field 16 px, output stride 4):

- :class:`SingleScaleNet`: features at one scale, a per-pixel (1x1) classifier, logits
  upsampled bilinearly to the image size. The baseline: it sees 16 px around each pixel.
- :class:`MultiScaleNet` (Farabet et al.): the SAME feature extractor (shared weights) applied
  to an image pyramid (1, 1/2, 1/4); the coarser feature maps are upsampled to the size of the
  finest one (as in the paper) and concatenated, then classified by 1x1 convolutions; logits
  are upsampled to the image size. At scale 1/4 the 16 px field covers 64 px of the image.
- :class:`RecurrentCNN` (Pinheiro & Collobert): one network applied ``iterations`` times; each
  pass sees the image plus the class probabilities (softmax) of the previous pass, starting
  from uniform probabilities, so the context grows with every iteration at no extra weights.
  One BatchNorm shared by all iterations fails (its running statistics average inputs that
  differ per iteration); the shipped model keeps the convolutions shared and gives every
  iteration its own BatchNorm (``iteration_norms=True``, after Cooijmans et al.).

Normalisation: the three shipped nets (:data:`course_lib.zoo.RECIPES`) all use BatchNorm, and
the recurrent one has one BatchNorm per iteration (``norm="batch", iteration_norms=True``):
one BatchNorm shared by all iterations would keep running statistics that match no
iteration's input (trained with it, the recurrent net scores far worse in eval mode than in
training). In eval mode a BatchNorm is a fixed per-channel affine map, so it mixes no pixels.
The builders also accept ``norm="group"`` (GroupNorm normalises each image on its own, so its
statistics never mismatch, but every output then depends a little on every pixel of the
image) and ``norm="none"``; :func:`recurrent_cnn` defaults to ``norm="group"`` without
iteration norms.

Classifying at the feature resolution (stride 4) and upsampling the logits, rather than the
features, gives the same outputs a 1x1 classifier would see at full resolution up to the
interpolation, for 1/16 of the classifier's cost.

References
----------
- C. Farabet, C. Couprie, L. Najman, Y. LeCun, "Learning Hierarchical Features for Scene
  Labeling", IEEE TPAMI 35(8), 2013. https://doi.org/10.1109/TPAMI.2012.231
- P. O. Pinheiro, R. Collobert, "Recurrent Convolutional Neural Networks for Scene
  Labeling", ICML 2014. https://proceedings.mlr.press/v32/pinheiro14.html
- T. Cooijmans, N. Ballas, C. Laurent, C. Gulcehre, A. Courville, "Recurrent Batch
  Normalization", ICLR 2017. https://arxiv.org/abs/1603.09025
- M. Figurnov, "Convolutional networks for semantic image segmentation" (lecture, MSU, 2014):
  the accuracy vs time tables of the two papers above.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib._checks import check_int, check_number

__all__ = ["feature_extractor", "pixel_classifier", "SingleScaleNet", "MultiScaleNet",
           "RecurrentCNN", "single_scale_net", "multiscale_net", "recurrent_cnn",
           "OUTPUT_STRIDE", "FIELD"]

#: Downsampling factor of :func:`feature_extractor` (two 2x2 max-pools).
OUTPUT_STRIDE = 4
#: Receptive field of one feature, in pixels of the extractor's input (3x3, 3x3, pool,
#: 3x3, 3x3, pool: 1 + 2 + 2 + 1 + 4 + 4 + 2 = 16).
FIELD = 16


def feature_extractor(in_channels: int = 3, width: int = 16, norm: str = "batch"
                      ) -> nn.Sequential:
    """Four 3x3 conv-norm-ReLU layers, two 2x2 max-pools: ``(N, C, H, W) -> (N, 2w, H/4, W/4)``.

    Parameters
    ----------
    in_channels : int
        Input channels (3 for RGB; 3 + num_classes for :class:`RecurrentCNN`).
    width : int
        Channels of the first two convolutions; the last two have ``2 * width``.
    norm : {"batch", "group", "none"}
        ``BatchNorm`` trains these small nets fastest, but keeps one set of running
        statistics: a module that sees several input distributions (recurrent iterations)
        is then evaluated with statistics that match none of them. ``GroupNorm`` (up to 4
        groups) normalises each image on its own; ``"none"`` uses plain biased convolutions.

    Returns
    -------
    torch.nn.Sequential
        Named layers ``conv1, norm1, relu1, ..., pool2``; ``2 * width`` output channels.

    Examples
    --------
    >>> feature_extractor(3, 8)(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 16, 16, 16])
    """
    check_int("in_channels", in_channels, 1)
    check_int("width", width, 1)
    if norm not in ("batch", "group", "none"):
        raise ValueError(f"norm must be 'batch', 'group' or 'none', got {norm!r}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = [in_channels, width, width, 2 * width, 2 * width]
    for i in range(4):
        c = channels[i + 1]
        layers[f"conv{i + 1}"] = nn.Conv2d(channels[i], c, 3, padding=1, bias=norm == "none")
        if norm != "none":
            layers[f"norm{i + 1}"] = (nn.GroupNorm(math.gcd(4, c), c) if norm == "group"
                                      else nn.BatchNorm2d(c))
        layers[f"relu{i + 1}"] = nn.ReLU(inplace=True)
        if i % 2 == 1:
            layers[f"pool{i // 2 + 1}"] = nn.MaxPool2d(2)
    return nn.Sequential(layers)


def pixel_classifier(in_channels: int, num_classes: int, hidden: int | None = 32
                     ) -> nn.Sequential:
    """Per-pixel classifier of 1x1 convolutions: ``(N, C, H, W) -> (N, num_classes, H, W)``.

    With ``hidden`` it is a two-layer perceptron applied at every pixel (Farabet's classifier);
    with ``hidden=None`` a single linear (logistic-regression) layer.

    Examples
    --------
    >>> pixel_classifier(8, 4)(torch.zeros(2, 8, 5, 5)).shape
    torch.Size([2, 4, 5, 5])
    """
    check_int("in_channels", in_channels, 1)
    check_int("num_classes", num_classes, 2)
    if hidden is None:
        return nn.Sequential(OrderedDict(score=nn.Conv2d(in_channels, num_classes, 1)))
    check_int("hidden", hidden, 1)
    return nn.Sequential(OrderedDict(
        fc=nn.Conv2d(in_channels, hidden, 1), relu=nn.ReLU(inplace=True),
        score=nn.Conv2d(hidden, num_classes, 1)))


def _check_images(x, in_channels: int, min_size: int) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != in_channels:
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (N, {in_channels}, H, W), got {got}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"x is {tuple(x.shape[-2:])} pixels; this network needs at least "
                         f"{min_size} x {min_size}: use larger images")


def _upsample(features: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(features, size=size, mode="bilinear", align_corners=False)


class SingleScaleNet(nn.Module):
    """Features at one scale, 1x1 classifier, logits bilinearly upsampled to the image size.

    Shapes: ``(N, in_channels, H, W) -> (N, num_classes, H, W)`` logits.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential,
                 in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.features = features
        self.classifier = classifier

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, single scale: features (stride "
                f"{OUTPUT_STRIDE}, field {FIELD} px) -> classifier -> bilinear upsample")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, OUTPUT_STRIDE)
        logits = self.classifier(self.features(x))  # (N, num_classes, H/4, W/4)
        return _upsample(logits, x.shape[-2:])


class MultiScaleNet(nn.Module):
    """One feature extractor (shared weights) over an image pyramid; concatenated features.

    Every pyramid level ``s`` is the image resized by ``s`` (antialiased bilinear); its
    features are upsampled (bilinear) to the size of the first level's features and the levels
    are concatenated along channels before the 1x1 classifier, whose logits are upsampled to
    ``(H, W)``. Shapes: ``(N, 3, H, W) -> (N, num_classes, H, W)``.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential,
                 scales: Sequence[float] = (1.0, 0.5, 0.25)) -> None:
        super().__init__()
        self.scales = tuple(float(s) for s in scales)
        self.features = features
        self.classifier = classifier

    def extra_repr(self) -> str:
        return (f"scales={self.scales}: the same features on every pyramid level -> upsample "
                f"-> concatenate {len(self.scales)} maps -> classifier -> upsample")

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The image at every scale: a list of ``(N, 3, round(H s), round(W s))``."""
        h, w = x.shape[-2:]
        return [x if s == 1.0 else F.interpolate(
            x, size=(round(h * s), round(w * s)), mode="bilinear", align_corners=False,
            antialias=True) for s in self.scales]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, 3, int(-(-OUTPUT_STRIDE // min(self.scales))))
        maps = [self.features(level) for level in self.pyramid(x)]
        size = maps[0].shape[-2:]  # (H/4, W/4) for the first scale, 1
        maps = [m if m.shape[-2:] == size else _upsample(m, size) for m in maps]
        logits = self.classifier(torch.cat(maps, dim=1))  # in: (N, F * len(scales), h, w)
        return _upsample(logits, x.shape[-2:])


class RecurrentCNN(nn.Module):
    """The same network applied ``iterations`` times on the image and its previous output.

    Iteration ``t`` sees ``cat([image, p_{t-1}])`` with ``p_{t-1}`` the softmax of the previous
    logits (``p_0`` uniform, ``1 / num_classes``), so ``3 + num_classes`` input channels.
    Shapes: ``(N, 3, H, W) -> (N, num_classes, H, W)`` logits of the last iteration, or a list
    of ``iterations`` such tensors with ``return_all=True``.
    """

    def __init__(self, network: SingleScaleNet, num_classes: int, iterations: int = 3,
                 iteration_norms: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.iterations = iterations
        self.network = network
        # Optionally one copy of every BatchNorm per later iteration (recurrent batch norm,
        # Cooijmans et al. 2017): the convolutions stay shared, the statistics do not.
        self.iteration_norms = nn.ModuleList()
        if iteration_norms:
            norms = {name: layer for name, layer in network.features.named_children()
                     if isinstance(layer, nn.BatchNorm2d)}
            if not norms:
                raise ValueError("iteration_norms=True needs BatchNorm layers in the network "
                                 "(build it with norm='batch')")
            for _ in range(iterations - 1):
                self.iteration_norms.append(nn.ModuleDict(
                    {name: copy.deepcopy(layer) for name, layer in norms.items()}))

    def extra_repr(self) -> str:
        per = ", batch norm per iteration" if len(self.iteration_norms) else ""
        return (f"iterations={self.iterations}: input = image (3) + previous class "
                f"probabilities ({self.num_classes}, uniform at first); same weights each "
                f"time{per}")

    def step(self, x: torch.Tensor, t: int) -> torch.Tensor:
        """Pass ``t`` alone: ``(N, 3 + C, H, W)`` image and probabilities -> ``(N, C, H, W)``."""
        if t == 0 or not len(self.iteration_norms):
            return self.network(x)
        norms = self.iteration_norms[t - 1]
        f = x
        for name, layer in self.network.features.named_children():
            f = (norms[name] if name in norms else layer)(f)  # shared convs, own norms
        return _upsample(self.network.classifier(f), x.shape[-2:])

    def forward(self, x: torch.Tensor, return_all: bool = False):
        _check_images(x, 3, OUTPUT_STRIDE)
        n, _, h, w = x.shape
        probs = x.new_full((n, self.num_classes, h, w), 1.0 / self.num_classes)
        outputs = []
        for t in range(self.iterations):
            logits = self.step(torch.cat([x, probs], dim=1), t)  # (N, 3 + C, H, W) in
            outputs.append(logits)
            probs = logits.softmax(dim=1)
        return outputs if return_all else outputs[-1]


def single_scale_net(*, num_classes: int = 4, width: int = 16, hidden: int | None = 32,
                     norm: str = "batch") -> SingleScaleNet:
    """Single-scale baseline (Farabet's "one scale" row): field 16 px.

    Examples
    --------
    >>> net = single_scale_net(num_classes=4)
    >>> net(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 4, 64, 64])
    """
    check_int("num_classes", num_classes, 2)
    check_int("width", width, 1)
    return SingleScaleNet(feature_extractor(3, width, norm),
                          pixel_classifier(2 * width, num_classes, hidden))


def multiscale_net(*, num_classes: int = 4, width: int = 16, hidden: int | None = 32,
                   scales: Sequence[float] = (1.0, 0.5, 0.25), norm: str = "batch"
                   ) -> MultiScaleNet:
    """Multi-scale convnet (Farabet et al. 2013): shared features over an image pyramid.

    Parameters
    ----------
    scales : sequence of float
        Distinct pyramid scales in (0, 1], e.g. ``(1, 0.5, 0.25)``.

    Examples
    --------
    >>> net = multiscale_net(num_classes=4, scales=(1, 0.5))
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 4, 64, 64])
    """
    check_int("num_classes", num_classes, 2)
    check_int("width", width, 1)
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence):
        raise TypeError(f"scales must be a sequence of floats in (0, 1], got {scales!r}")
    values = [check_number(f"scales[{i}]", s) for i, s in enumerate(scales)]
    if not values or any(not 0 < s <= 1 for s in values) or len(set(values)) != len(values):
        raise ValueError(f"scales must be distinct floats in (0, 1] (e.g. (1, 0.5, 0.25)), "
                         f"got {scales!r}")
    return MultiScaleNet(feature_extractor(3, width, norm),
                         pixel_classifier(2 * width * len(values), num_classes, hidden), values)


def recurrent_cnn(*, num_classes: int = 4, iterations: int = 3, width: int = 16,
                  hidden: int | None = 32, norm: str = "group",
                  iteration_norms: bool = False) -> RecurrentCNN:
    """Recurrent convnet (Pinheiro & Collobert 2014): one network, ``iterations`` passes.

    Parameters
    ----------
    iterations : int
        Passes of the network; pass ``t`` sees the image and the softmax of pass ``t - 1``.
    norm : {"group", "batch", "none"}
        Normalisation of the feature extractor (see :func:`feature_extractor`).
    iteration_norms : bool
        With ``norm="batch"``: one BatchNorm per iteration, convolutions still shared.

    Examples
    --------
    >>> net = recurrent_cnn(num_classes=4, iterations=2)
    >>> [o.shape[1] for o in net(torch.zeros(1, 3, 32, 32), return_all=True)]
    [4, 4]
    """
    check_int("num_classes", num_classes, 2)
    check_int("iterations", iterations, 1)
    check_int("width", width, 1)
    network = SingleScaleNet(feature_extractor(3 + num_classes, width, norm),
                             pixel_classifier(2 * width, num_classes, hidden),
                             in_channels=3 + num_classes)
    return RecurrentCNN(network, num_classes, iterations, iteration_norms)
