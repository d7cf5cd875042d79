"""FCN-32s, FCN-16s and FCN-8s: a classification convnet made fully convolutional (lecture 06).

A VGG-style backbone (five blocks of 3x3 convolutions, each closed by a 2x2 max pool, so
pool3 / pool4 / pool5 have strides 8 / 16 / 32), the classifier as convolutions (``fc6``,
``fc7``), a 1x1 ``score_fr`` that scores every class at stride 32, and transposed
convolutions initialised to bilinear interpolation that bring the scores back to the image.
FCN-16s adds the scores of pool4 (``score_pool4``, a 1x1 convolution initialised to zero) to
the 2x upsampled ``score_fr``; FCN-8s adds those of pool3 as well. Every sum needs both maps
on one grid: the offsets of the ``Crop`` layers are derived from the layers' geometry by
:func:`course_lib.receptive_field.crop_offset` (never typed in), and kept in ``model.crops``.

Every upsampling layer starts as bilinear interpolation and stays trainable. The reference
Caffe nets freeze them all at bilinear (``lr_mult=0``); the paper lets the 2x layers learn.
Freeze them with ``requires_grad_(False)`` on every ``nn.ConvTranspose2d`` to compare.

Two families: the course's small nets (:func:`fcn32s`, :func:`fcn16s`, :func:`fcn8s`: padded
convolutions and batch normalisation, every offset 0) and the paper's VGG16 layout
(:func:`vgg16_fcn`: conv1_1 padded by 100, a 7x7 ``fc6``, Caffe's offsets 19 / 5, 27 /
5, 9, 31).

References
----------
- J. Long, E. Shelhamer, T. Darrell, "Fully Convolutional Networks for Semantic
  Segmentation", CVPR 2015. https://arxiv.org/abs/1411.4038
- The reference Caffe nets ``voc-fcn32s``, ``voc-fcn16s``, ``voc-fcn8s``,
  https://github.com/shelhamer/fcn.berkeleyvision.org
- K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
  Recognition", ICLR 2015.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib._checks import check_choice, check_int, check_num_classes, type_name
from course_lib.ops import bilinear_kernel
from course_lib.receptive_field.align import crop_offset, layers_of

__all__ = ["FCN", "Crop", "fcn32s", "fcn16s", "fcn8s", "vgg16_fcn"]

_VARIANTS = {"32s": 32, "16s": 16, "8s": 8}
_FINAL = {32: "upscore", 16: "upscore16", 8: "upscore8"}  # Caffe's layer names
_SKIPS = {32: (), 16: ((4, "upscore2"),), 8: ((4, "upscore2"), (3, "upscore_pool4"))}


class Crop(nn.Module):
    """Caffe's ``Crop``, signed: ``x[..., o:o + h, o:o + w]`` with ``(h, w)`` the size of ``like``.

    Where ``o < 0`` or ``x`` is too short, the missing rows and columns are zeros (padding
    instead of cropping). ``forward(x, like)``: ``x (N, C, H, W) -> (N, C, h, w)``.
    """

    def __init__(self, offset: int):
        super().__init__()
        self.offset = check_int("offset", offset)

    def forward(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        o, margin = self.offset, abs(self.offset)
        h, w = like.shape[-2:]
        # zeros on every side first, so that the crop below never removes more than there is
        # (an offset beyond x, or x much smaller than like); F.pad: left, right, top, bottom
        x = F.pad(x, [margin, w + margin, margin, h + margin])  # (N, C, H + h + 2m, W + w + 2m)
        start = o + margin  # x's pixel o, in the padded map; a negative pad crops
        return F.pad(x, [-start, w + start - x.shape[-1], -start, h + start - x.shape[-2]])

    def extra_repr(self) -> str:
        return f"offset={self.offset}"


def _upsample(num_classes: int, factor: int, padded: bool) -> nn.ConvTranspose2d:
    """A ``2 factor`` x ``2 factor`` transposed convolution, stride ``factor``, bilinear at init.

    ``padded``: padding ``factor // 2``, the output of ``n`` inputs is ``n factor`` (as
    ``F.interpolate(scale_factor=factor, mode="bilinear")``); else Caffe's padding 0.
    """
    up = nn.ConvTranspose2d(num_classes, num_classes, 2 * factor, factor,
                            padding=factor // 2 if padded else 0, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(2 * factor, num_classes))  # (K, K, 2f, 2f) diagonal
    return up


def _score(channels: int, num_classes: int, name: str) -> nn.Sequential:
    """A skip head: a 1x1 scoring convolution initialised to zero (the paper's choice)."""
    conv = nn.Conv2d(channels, num_classes, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return nn.Sequential(OrderedDict([(name, conv)]))


def _out_channels(block: nn.Module) -> int:
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


class FCN(nn.Module):
    """A fully convolutional network: ``features``, ``head``, skips, upsampling, crops.

    Parameters
    ----------
    features : nn.Sequential
        Five blocks (``block1`` .. ``block5``), each ending with its pool.
    head : nn.Sequential
        ``fc6`` .. ``score_fr``: pool5's features to ``num_classes`` scores at stride 32.
    num_classes : int
        Background included.
    stride : {32, 16, 8}
        Stride of the finest fused scores: FCN-32s, FCN-16s or FCN-8s.
    fit_size : bool
        True: the upsampling layers are padded and sized (``output_size``) so that every
        sum and the output are computed, not padded (the course's nets). False: Caffe's
        layout, unpadded transposed convolutions then crops.

    Attributes
    ----------
    crops : dict of str to int
        Each ``Crop`` layer's name (Caffe's: ``score_pool4c``, ``score_pool3c``, ``score``)
        and its offset, derived from the layers' coordinate maps; 0 or below means padding.

    Notes
    -----
    ``forward``: ``x (N, C_in, H, W), float -> logits (N, num_classes, H, W)``.
    """

    def __init__(self, features: nn.Sequential, head: nn.Sequential, num_classes: int,
                 stride: int, *, fit_size: bool):
        super().__init__()
        self.stride, self.fit_size, self.num_classes = stride, fit_size, num_classes
        self.features, self.head = features, head
        chain, self.crops = layers_of(features) + layers_of(head), {}
        for pool, up_name in _SKIPS[stride]:
            skip = _score(_out_channels(features[pool - 1]), num_classes, f"score_pool{pool}")
            up = _upsample(num_classes, 2, fit_size)
            chain = [*chain, *layers_of(up)]  # the sum lives on the upsampled grid
            cropped = [*layers_of(features[:pool]), *layers_of(skip)]
            name = f"score_pool{pool}c"
            self.crops[name] = crop_offset(cropped, chain, signed=True)
            setattr(self, f"skip{pool}", skip)
            setattr(self, up_name, up)
            setattr(self, name, Crop(self.crops[name]))
        final = _upsample(num_classes, stride, fit_size)
        setattr(self, _FINAL[stride], final)
        self.crops["score"] = crop_offset([*chain, *layers_of(final)], [], signed=True)
        self.score = Crop(self.crops["score"])

    def score_sizes(self, x: torch.Tensor) -> dict[str, tuple[int, int]]:
        """``(height, width)`` of each score map the forward pass of ``x`` fuses.

        ``score_fr`` (stride 32), then ``score_pool4`` and ``score_pool3`` where the net has
        them. Works on the ``meta`` device (shapes only).

        Examples
        --------
        >>> fcn8s(width=2).score_sizes(torch.zeros(1, 3, 256, 256))
        {'score_fr': (8, 8), 'score_pool4': (16, 16), 'score_pool3': (32, 32)}
        """
        sizes, hooks = {}, []
        for part, label in (("head", "score_fr"), ("skip4", "score_pool4"),
                            ("skip3", "score_pool3")):
            if hasattr(self, part):
                hooks.append(getattr(self, part).register_forward_hook(
                    lambda m, i, out, label=label: sizes.__setitem__(label,
                                                                     tuple(out.shape[-2:]))))
        try:
            with torch.no_grad():
                self(x)
        finally:
            for hook in hooks:
                hook.remove()
        return sizes

    def _up(self, up: nn.ConvTranspose2d, x: torch.Tensor, height, width) -> torch.Tensor:
        return up(x, output_size=[height, width]) if self.fit_size else up(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taps, h = [], x
        for block in self.features:
            h = block(h)
            taps.append(h)  # pool1 .. pool5, strides 2 .. 32
        score = self.head(h)  # (N, K, ~H/32, ~W/32)
        for pool, up_name in _SKIPS[self.stride]:
            skip, crop = getattr(self, f"skip{pool}")(taps[pool - 1]), getattr(
                self, f"score_pool{pool}c")
            # the upsampled scores are the reference grid; the skip is cropped onto them
            up = self._up(getattr(self, up_name), score, skip.shape[-2] - crop.offset,
                          skip.shape[-1] - crop.offset)
            score = up + crop(skip, up)  # (N, K, 2 h, 2 w)
        o = self.score.offset
        up = self._up(getattr(self, _FINAL[self.stride]), score, x.shape[-2] + o,
                      x.shape[-1] + o)
        return self.score(up, x)  # (N, K, H, W)


def _fcn(stride: int, *, in_channels: int, widths: Sequence[int], depths: Sequence[int],
         first_padding: int, fc: int, fc_kernel: int, fc_padding: int, num_classes: int,
         batch_norm: bool,
         ceil_mode: bool, dropout: float, fit_size: bool) -> FCN:
    """The one assembler behind the public builders."""
    blocks, c_in = OrderedDict(), in_channels
    for b, (c_out, depth) in enumerate(zip(widths, depths), start=1):
        layers = OrderedDict()
        for i in range(1, depth + 1):
            pad = first_padding if b == i == 1 else 1
            layers[f"conv{b}_{i}"] = nn.Conv2d(c_in, c_out, 3, padding=pad, bias=not batch_norm)
            if batch_norm:
                layers[f"bn{b}_{i}"] = nn.BatchNorm2d(c_out)
            layers[f"relu{b}_{i}"] = nn.ReLU(inplace=True)
            c_in = c_out
        layers[f"pool{b}"] = nn.MaxPool2d(2, 2, ceil_mode=ceil_mode)
        blocks[f"block{b}"] = nn.Sequential(layers)
    head = OrderedDict()
    for i, (c_out, k) in enumerate(((fc, fc_kernel), (fc, 1)), start=6):
        head[f"fc{i}"] = nn.Conv2d(c_in, c_out, k, padding=fc_padding if i == 6 else 0,
                                   bias=not batch_norm)
        if batch_norm:
            head[f"bn{i}"] = nn.BatchNorm2d(c_out)
        head[f"relu{i}"] = nn.ReLU(inplace=True)
        if dropout:
            head[f"drop{i}"] = nn.Dropout(dropout)
        c_in = c_out
    head["score_fr"] = nn.Conv2d(c_in, num_classes, 1)
    return FCN(nn.Sequential(blocks), nn.Sequential(head), num_classes, stride,
               fit_size=fit_size)


def _course(stride: int, num_classes, width, in_channels) -> FCN:
    num_classes = check_num_classes(num_classes, 2)
    width, in_channels = check_int("width", width, 1), check_int("in_channels", in_channels, 1)
    return _fcn(stride, in_channels=in_channels, widths=[width * m for m in (1, 2, 4, 8, 8)],
                depths=(2,) * 5, first_padding=1, fc=16 * width, fc_kernel=3, fc_padding=1,
                num_classes=num_classes, batch_norm=True, ceil_mode=False, dropout=0.0,
                fit_size=True)


_COURSE_DOC = """The course's FCN-{v}: a scaled-down VGG with batch normalisation{what}.

    Five blocks of two 3x3 convolutions (padding 1, BatchNorm, ReLU) with widths
    ``width x (1, 2, 4, 8, 8)``, each closed by a 2x2 max pool; ``fc6`` is a padded 3x3
    convolution and ``fc7`` a 1x1 one (``16 width`` channels); ``score_fr`` is 1x1. The
    transposed convolutions (kernel ``2 r``, stride ``r``, padding ``r // 2``) start as
    bilinear interpolation and are sized to the map they meet: every crop offset derived
    is 0 (``model.crops``) and no output pixel is padding. For a 256 px input the scores
    are 8x8 (``score_fr``), 16x16 (``score_pool4``) and 32x32 (``score_pool3``).

    Parameters
    ----------
    num_classes : int
        Classes, background included (``>= 2``).
    width : int
        Channels of the first block (``>= 1``).
    in_channels : int
        Image channels (``>= 1``).

    Returns
    -------
    FCN
        ``(N, in_channels, H, W) -> (N, num_classes, H, W)`` for any ``H, W >= 32``.

    Raises
    ------
    TypeError
        An argument that is not an int.
    ValueError
        ``num_classes < 2``, ``width < 1`` or ``in_channels < 1``.
    """


def fcn32s(*, num_classes: int = 4, width: int = 16, in_channels: int = 3) -> FCN:
    return _course(32, num_classes, width, in_channels)


def fcn16s(*, num_classes: int = 4, width: int = 16, in_channels: int = 3) -> FCN:
    return _course(16, num_classes, width, in_channels)


def fcn8s(*, num_classes: int = 4, width: int = 16, in_channels: int = 3) -> FCN:
    return _course(8, num_classes, width, in_channels)


fcn32s.__doc__ = _COURSE_DOC.format(v="32s", what=": scores at stride 32, upsampled 32x")
fcn16s.__doc__ = _COURSE_DOC.format(v="16s", what=", pool4's scores fused at stride 16")
fcn8s.__doc__ = _COURSE_DOC.format(v="8s", what=", pool4's and pool3's scores fused")


def vgg16_fcn(*, variant: str = "32s", num_classes: int = 21) -> FCN:
    """The paper's FCN on VGG16, as in the reference Caffe nets (no weights are loaded).

    conv1_1 is padded by 100, no batch normalisation, ``fc6`` is an unpadded 7x7
    convolution (4096 channels), ``fc7`` 1x1, dropout 0.5 after both; the transposed
    convolutions are unpadded (kernel ``2 r``, stride ``r``) and the crops derived are
    Caffe's: 19 (32s); 5 and 27 (16s); 5, 9 and 31 (8s).

    Pooling rounds **up**, as Caffe does (``ceil_mode=True``): for a 256 px input the
    ``score_fr`` / ``score_pool4`` / ``score_pool3`` maps are 9 / 29 / 57 px, Caffe's blob
    sizes (torch's default floor would give 8 / 28 / 56). The offsets do not depend on it.

    Parameters
    ----------
    variant : {"32s", "16s", "8s"}
    num_classes : int
        ``>= 2``; 21 for PASCAL VOC (20 classes and background).

    Returns
    -------
    FCN
        ``(N, 3, H, W) -> (N, num_classes, H, W)`` for any ``H, W >= 1``.

    Raises
    ------
    TypeError
        ``variant`` not a string, ``num_classes`` not an int.
    ValueError
        ``variant`` not one of the three, ``num_classes < 2``.
    """
    if not isinstance(variant, str):
        raise TypeError(f"variant must be a string, one of {tuple(_VARIANTS)}, got {variant!r} "
                        f"({type_name(variant)})")
    stride = _VARIANTS[check_choice("variant", variant, tuple(_VARIANTS))]
    return _fcn(stride, in_channels=3, widths=(64, 128, 256, 512, 512), depths=(2, 2, 3, 3, 3),
                first_padding=100, fc=4096, fc_kernel=7, fc_padding=0,
                num_classes=check_num_classes(num_classes, 2), batch_norm=False,
                ceil_mode=True, dropout=0.5, fit_size=False)
