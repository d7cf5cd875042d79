"""The first segmentation networks: a patch classifier (also run fully convolutionally) and an
all-convolution network without pooling.

- :class:`PatchClassifier`: classifies the centre pixel of a ``P x P`` patch with unpadded
  3x3 convolutions and a last convolution whose kernel covers the whole remaining map, i.e. a
  fully connected layer written as a convolution. On a patch the output is ``1 x 1``; on an
  image zero-padded by ``P // 2`` it is one prediction per pixel, numerically the same as
  classifying every patch (:func:`sliding_window_logits`) but without recomputing the features
  that overlapping patches share.
- :func:`all_conv_net`: ``num_layers`` 3x3 convolutions whose padding keeps the size, no
  pooling, then a 1x1 classifier. Its receptive field ``1 + 2 sum_l d_l``
  (:func:`all_conv_field`) grows only linearly with depth (exponentially with doubling
  dilations).

References
----------
- D. Grangier, L. Bottou, R. Collobert, "Deep Convolutional Networks for Scene Parsing",
  ICML 2009 workshop: patch-wise pixel classification.
- P. Sermanet et al., "OverFeat: Integrated Recognition, Localization and Detection using
  Convolutional Networks", ICLR 2014: fully connected layers as convolutions, dense sliding
  windows at the cost of one pass.
- J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015, section 3.1 ("convolutionalization") and 4.4 (patch sampling).
- F. Yu, V. Koltun, "Multi-Scale Context Aggregation by Dilated Convolutions", ICLR 2016.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib._checks import check_int

__all__ = ["PatchClassifier", "patch_classifier", "sliding_window_logits", "all_conv_net",
           "all_conv_field", "conv_macs"]


# ----------------------------------------------------------------------------- patch classifier
class PatchClassifier(nn.Sequential):
    """Centre-pixel classifier of ``P x P`` patches; run on a whole image it is dense.

    The children are ``pad`` (zero padding by ``P // 2``), ``features`` (unpadded 3x3 convs)
    and ``head`` (``fc``: a conv with the kernel of the remaining map, then a 1x1 ``score``).
    ``forward`` pads, so ``(N, 3, H, W) -> (N, C, H, W)``; :meth:`patch_logits` skips the
    padding and maps patches ``(M, 3, P, P) -> (M, C)``. Build it with
    :func:`patch_classifier`.
    """

    def __init__(self, patch_size: int, features: nn.Sequential, head: nn.Sequential) -> None:
        super().__init__(OrderedDict(pad=nn.ZeroPad2d(patch_size // 2), features=features,
                                     head=head))
        self.patch_size = patch_size

    def extra_repr(self) -> str:
        p = self.patch_size
        return (f"patch_size={p}: scores the centre pixel of a {p}x{p} patch; forward pads by "
                f"{p // 2}, so an image gives one prediction per pixel")

    def patch_logits(self, patches: torch.Tensor) -> torch.Tensor:
        """Class scores of the centre pixel of each patch.

        Parameters
        ----------
        patches : torch.Tensor, shape (M, C_in, P, P)

        Returns
        -------
        torch.Tensor, shape (M, num_classes)
        """
        p = self.patch_size
        if not isinstance(patches, torch.Tensor) or patches.ndim != 4 \
                or tuple(patches.shape[-2:]) != (p, p):
            got = tuple(patches.shape) if isinstance(patches, torch.Tensor) else type(patches)
            raise ValueError(f"patches must have shape (M, C, {p}, {p}), got {got}")
        return self.head(self.features(patches)).flatten(1)  # (M, C, 1, 1) -> (M, C)


def patch_classifier(*, patch_size: int, num_classes: int, width: int = 16,
                     hidden: int | None = None, num_convs: int = 2,
                     in_channels: int = 3) -> PatchClassifier:
    """A patch CNN for the centre pixel, usable fully convolutionally.

    Parameters
    ----------
    patch_size : int
        Odd side ``P`` of the patches (the receptive field), ``>= 2 num_convs + 1``.
    num_classes : int
        Output classes, background included (>= 2).
    width : int
        Channels of the 3x3 convolutions.
    hidden : int, optional
        Units of the fully connected layer; default ``2 * width``.
    num_convs : int
        Unpadded 3x3 convolutions before the fully connected layer (>= 0).
    in_channels : int

    Returns
    -------
    PatchClassifier
        ``(N, C_in, H, W) -> (N, num_classes, H, W)``; ``patch_logits``: ``(M, C_in, P, P)
        -> (M, num_classes)``.

    Examples
    --------
    >>> net = patch_classifier(patch_size=9, num_classes=4, width=4)
    >>> net(torch.zeros(2, 3, 20, 24)).shape
    torch.Size([2, 4, 20, 24])
    >>> net.patch_logits(torch.zeros(5, 3, 9, 9)).shape
    torch.Size([5, 4])
    """
    check_int("num_convs", num_convs, 0)
    check_int("patch_size", patch_size, 2 * num_convs + 1)
    if patch_size % 2 == 0:
        raise ValueError(f"patch_size must be odd so that the patch has a centre pixel, got "
                         f"{patch_size}")
    check_int("num_classes", num_classes, 2)
    check_int("width", width, 1)
    hidden = 2 * width if hidden is None else check_int("hidden", hidden, 1)
    check_int("in_channels", in_channels, 1)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = in_channels
    for i in range(1, num_convs + 1):
        layers[f"conv{i}"] = nn.Conv2d(channels, width, 3)  # no padding: the map shrinks by 2
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        channels = width
    fc_kernel = patch_size - 2 * num_convs  # side of the map left from a P x P patch
    head = nn.Sequential(OrderedDict(
        fc=nn.Conv2d(channels, hidden, fc_kernel),  # a fully connected layer over that map
        relu=nn.ReLU(inplace=True),
        score=nn.Conv2d(hidden, num_classes, 1),
    ))
    return PatchClassifier(patch_size, nn.Sequential(layers), head)


def sliding_window_logits(model: PatchClassifier, images: torch.Tensor, *,
                          batch_size: int = 1024) -> torch.Tensor:
    """Classify every pixel from its own patch, ``batch_size`` patches at a time.

    Each image is zero-padded by ``P // 2`` (as ``model.pad`` does), cut into its ``H W``
    overlapping patches with :func:`torch.nn.functional.unfold`, and every patch goes
    through :meth:`PatchClassifier.patch_logits`: the redundant computation that running
    ``model`` on the whole image avoids. ``batch_size=1`` is the literal loop over patches.

    Parameters
    ----------
    model : PatchClassifier
    images : torch.Tensor, shape (N, C_in, H, W) or (C_in, H, W)
    batch_size : int
        Patches per forward pass.

    Returns
    -------
    torch.Tensor, shape (N, num_classes, H, W) (or (num_classes, H, W))

    Examples
    --------
    >>> net = patch_classifier(patch_size=5, num_classes=3, width=2)
    >>> x = torch.rand(1, 3, 6, 7)
    >>> bool(torch.allclose(sliding_window_logits(net, x), net(x), atol=1e-6))
    True
    """
    if not isinstance(model, PatchClassifier):
        raise TypeError(f"model must be a PatchClassifier (see patch_classifier), got "
                        f"{type(model).__name__}")
    check_int("batch_size", batch_size, 1)
    if not isinstance(images, torch.Tensor) or images.ndim not in (3, 4):
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor (N, C, H, W) or (C, H, W), got {got}")
    single = images.ndim == 3
    batch = images[None] if single else images  # (N, C, H, W)
    p, (c, h, w) = model.patch_size, batch.shape[1:]
    out = []
    for image in batch:
        padded = F.pad(image[None], (p // 2,) * 4)  # (1, C, H + P - 1, W + P - 1)
        cols = F.unfold(padded, p)  # (1, C*P*P, H*W): one column per pixel
        patches = cols[0].T.reshape(h * w, c, p, p)  # (H*W, C, P, P)
        logits = torch.cat([model.patch_logits(patches[i:i + batch_size])
                            for i in range(0, h * w, batch_size)])  # (H*W, K)
        out.append(logits.T.reshape(-1, h, w))  # (K, H, W)
    result = torch.stack(out)  # (N, K, H, W)
    return result[0] if single else result


# ----------------------------------------------------------------------------- all-conv net
def all_conv_field(num_layers: int, dilation: int | Sequence[int] = 1) -> int:
    """Receptive field ``1 + 2 sum_l d_l`` of ``num_layers`` 3x3 convs (stride 1).

    Examples
    --------
    >>> all_conv_field(4), all_conv_field(4, dilation=(1, 2, 4, 8))
    (9, 31)
    """
    return 1 + 2 * sum(_dilations(num_layers, dilation))


def _dilations(num_layers, dilation) -> list[int]:
    check_int("num_layers", num_layers, 1)
    if isinstance(dilation, Sequence) and not isinstance(dilation, str):
        dilations = list(dilation)
        if len(dilations) != num_layers:
            raise ValueError(f"dilation must be an int or one int per layer ({num_layers}), "
                             f"got {len(dilations)} values: {dilation!r}")
    else:
        try:
            dilations = [check_int("dilation", dilation, 1)] * num_layers
        except TypeError:
            raise TypeError(f"dilation must be an int >= 1 or a sequence of them, got "
                            f"{dilation!r}") from None
    return [check_int("dilation", d, 1) for d in dilations]


def all_conv_net(*, num_layers: int, width: int, num_classes: int,
                 dilation: int | Sequence[int] = 1, in_channels: int = 3,
                 batch_norm: bool = True) -> nn.Sequential:
    """3x3 conv(-BN)-ReLU layers that keep the size, no pooling, then a 1x1 classifier.

    Parameters
    ----------
    num_layers : int
        Number of 3x3 convolutions (>= 1).
    width : int
        Channels of every convolution.
    num_classes : int
        Output classes, background included (>= 2).
    dilation : int or sequence of int
        One dilation for all layers, or one per layer (padding = dilation keeps the size).
    in_channels : int
    batch_norm : bool
        Put a ``BatchNorm2d`` after each convolution (faster training).

    Returns
    -------
    torch.nn.Sequential
        Children ``features`` (``conv1, bn1, relu1, ...``) and ``head`` (``score``);
        ``(N, C_in, H, W) -> (N, num_classes, H, W)``. Receptive field:
        :func:`all_conv_field`.

    Examples
    --------
    >>> net = all_conv_net(num_layers=3, width=8, num_classes=4)
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 4, 32, 32])
    """
    dilations = _dilations(num_layers, dilation)
    check_int("width", width, 1)
    check_int("num_classes", num_classes, 2)
    check_int("in_channels", in_channels, 1)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = in_channels
    for i, d in enumerate(dilations, start=1):
        layers[f"conv{i}"] = nn.Conv2d(channels, width, 3, padding=d, dilation=d,
                                       bias=not batch_norm)
        if batch_norm:
            layers[f"bn{i}"] = nn.BatchNorm2d(width)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        channels = width
    head = nn.Sequential(OrderedDict(score=nn.Conv2d(width, num_classes, 1)))
    return nn.Sequential(OrderedDict(features=nn.Sequential(layers), head=head))


# ----------------------------------------------------------------------------- cost
def conv_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every convolution in one forward pass of ``model(x)``.

    An ``nn.Conv2d`` producing ``out`` of shape (N, C_out, H', W') costs ``out.numel() *
    C_in/groups * kh * kw`` MACs: every output reads a window. An ``nn.ConvTranspose2d`` fed
    ``inp`` of shape (N, C_in, H, W) costs ``inp.numel() * C_out/groups * kh * kw``: every
    input stamps its kernel (the splat of lecture 03), whatever the padding crops afterwards.
    Other layers are not counted. Works on the ``meta`` device (shapes only).

    Examples
    --------
    >>> conv_macs(nn.Conv2d(2, 3, 3), torch.zeros(1, 2, 5, 5))  # 3*3*3 outputs, 2*3*3 each
    486
    >>> conv_macs(nn.ConvTranspose2d(2, 3, 4, stride=2), torch.zeros(1, 2, 5, 5))  # 50 * 3*4*4
    2400
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    total = 0

    def hook(mod, inputs, out):
        nonlocal total
        kh, kw = mod.kernel_size
        if isinstance(mod, nn.ConvTranspose2d):
            total += inputs[0].numel() * (mod.out_channels // mod.groups) * kh * kw
        else:
            total += out.numel() * (mod.in_channels // mod.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return total
