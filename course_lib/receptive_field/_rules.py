"""The per-op rules of the graph tracer: which input positions each output position reads.

A :class:`NodeRule` says how one node's fields follow from its inputs'; the constructors
below build one for each kind of op (windows of convolutions and pools, transposed
convolutions and unpooling, adaptive pooling, interpolation, reshapes, slices).
:mod:`course_lib.receptive_field.graph` picks the rule of every traced node.

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import fx

from course_lib._checks import check_pair

__all__ = ["NodeRule", "refuse", "side", "geometry", "window", "transposed", "adaptive",
           "interpolate", "resampling", "reshape", "along", "slice_rule"]


@dataclass
class NodeRule:
    """How one node's fields follow from its inputs': ``kind`` ``"input"`` (pixel i reads
    ``[i, i + 1]``), ``"const"`` (no field: weights), ``"whole"`` (the whole input: global
    pooling, flattening a map), ``"merge"`` (the union of the inputs' fields at the same
    position: pointwise ops, sums, concatenation) or ``"geometry"`` (windows, resampling)."""

    kind: str
    flat: bool = False      # one field for the whole tensor (vectors, whole-input maps)
    inputs: tuple = ()      # the tensor nodes whose fields it reads
    reads: object = None    # o -> [(k, i)]: output position o reads position i of inputs[k]
    affine: tuple = (1, 0)  # geometry: output o sits at input index b + a o, as (a, b)
    height: int = 1         # real output positions (the map height; 1 when flat)
    label: str = ""         # the module path ("features.28") or the node name ("add_1")
    output_size: int | None = None


def refuse(node, what: str):
    raise ValueError(f"receptive_field_of: node {node.name!r} {what}; if it does not move "
                     "pixels pass it in pointwise=..., else give its geometry as Layer objects "
                     "to receptive_field or measure it with effective_receptive_field")


def side(node, what: str, value) -> int:
    """The height entry of a square ``int or (h, w)`` layer parameter."""
    h, w = check_pair(f"node {node.name!r}: {what}", value, 0)
    if h != w:
        refuse(node, f"has {what}={tuple(value)}, not square: only square layers are "
                      "measured (along the height axis)")
    return h


def geometry(src, reads, a, b) -> NodeRule:
    return NodeRule("geometry", False, (src,), reads, (Fraction(a), Fraction(b)))


def window(src, k: int, s: int, p: int, d: int) -> NodeRule:
    """Convolution / pooling: output o reads inputs ``s o - p + t d`` for taps t < k."""
    return geometry(src, lambda o: [(0, s * o - p + t * d) for t in range(k)], s,
                     Fraction(d * (k - 1), 2) - p)


def transposed(src, k: int, s: int, p: int, d: int, n_in: int) -> NodeRule:
    """Transposed conv / max unpooling: output ``o = s i - p + t d`` gets input i for tap t.

    With ``d = 1`` the taps are ``t = (o + p) mod s, + s, + 2s, ...`` below k: at most
    ``ceil(k / s)`` inputs per output, adjacent ones, so the field grows by
    ``(ceil(k / s) - 1) jump_in``. Unpooling counts the whole window (indices may point
    anywhere in it).
    """
    def reads(o):
        hits = [o + p - t * d for t in range(k) if (o + p - t * d) % s == 0]
        return [(0, q // s) for q in hits if 0 <= q // s < n_in]

    return geometry(src, reads, Fraction(1, s), (p - Fraction(d * (k - 1), 2)) / s)


def adaptive(src, n_in: int, k: int) -> NodeRule:
    """Adaptive pooling windows ``[floor(o n / k), ceil((o + 1) n / k))``; global: all."""
    if k == 1 and n_in > 1:
        return NodeRule("whole", True)
    a = Fraction(n_in, k)
    reads = lambda o: [(0, i) for i in range(o * n_in // k, -(-(o + 1) * n_in // k))]
    return geometry(src, reads, a, a / 2 - Fraction(1, 2))


def interpolate(node, src, par, n_in: int, n_out: int, dtype) -> NodeRule:
    """Interpolation: the inputs each output reads, taken from a one-hot probe run through
    PyTorch's own kernel (its rounding, modes, antialias); the taps are clamped at borders."""
    mode, scale = par.get("mode", "nearest"), par.get("scale_factor")
    if isinstance(scale, (tuple, list)):
        if len(set(scale)) > 1:
            refuse(node, f"has scale_factor={tuple(scale)}, not square")
        scale = scale[0]
    by_scale = scale is not None and par.get("size") is None \
        and not par.get("recompute_scale_factor")
    # one-hot rows, two columns wide: the antialiased kernels mishandle a width of one
    probe = torch.eye(n_in, dtype=dtype).reshape(n_in, 1, n_in, 1).repeat(1, 1, 1, 2)
    if mode == "area":
        out = F.adaptive_avg_pool2d(probe, (n_out, 2))
    else:
        kw = dict(scale_factor=(float(scale), 1.0)) if by_scale else dict(size=(n_out, 2))
        out = F.interpolate(probe, mode=mode, align_corners=par.get("align_corners"),
                            antialias=bool(par.get("antialias")), **kw)
    taps = [[(0, int(i)) for i in torch.nonzero(out[:, 0, o, 0])] for o in range(n_out)]
    reads = lambda o: taps[min(max(o, 0), n_out - 1)]
    if par.get("align_corners") and mode in ("bilinear", "bicubic"):
        return geometry(src, reads, Fraction(n_in - 1, max(n_out - 1, 1)), 0)
    r = 1 / Fraction(scale).limit_denominator(10**6) if by_scale else Fraction(n_in, n_out)
    return geometry(src, reads, r, r / 2 - Fraction(1, 2))


def resampling(node, kind: str, par: dict, shapes: dict, dtype) -> NodeRule:
    """Convolution, pooling, resampling and padding; ``par`` holds the op's arguments."""
    src = par["input"]
    n_in, n_out = shapes[src][-2], shapes[node][-2]
    if kind == "adaptive":
        size = par["output_size"]
        size = list(size) * (3 - len(size)) if isinstance(size, (tuple, list)) else [size] * 2
        return adaptive(src, n_in, side(node, "output_size", [n_in if s is None else s
                                                                for s in size]))
    if kind == "interp":
        return interpolate(node, src, par, n_in, n_out, dtype)
    if kind == "shuffle":
        r = par["upscale_factor"]
        return geometry(src, lambda o: [(0, min(max(o // r, 0), n_in - 1))], Fraction(1, r),
                         Fraction(1, 2 * r) - Fraction(1, 2))
    if kind == "unshuffle":
        return window(src, par["downscale_factor"], par["downscale_factor"], 0, 1)
    if kind == "pad":
        pad = list(par.get("pad", par.get("padding")))
        if len(pad) != 4 or pad[:2] != pad[2:]:
            refuse(node, f"pads by {pad}, not square (left = top and right = bottom)")
        return geometry(src, lambda o: [(0, o - pad[2])], 1, -pad[2])
    k = side(node, "kernel_size", par["kernel_size"])
    stride = par.get("stride", 1 if "conv" in kind else None)  # None: the kernel (pools)
    s = k if stride is None or stride in ([], ()) else side(node, "stride", stride)
    d = side(node, "dilation", par.get("dilation", 1))
    pad = par.get("padding", 0)
    pad = {"same": d * (k - 1) // 2, "valid": 0}.get(pad, pad) if isinstance(pad, str) else pad
    p = side(node, "padding", pad)  # "same" (stride 1): the odd extra pixel goes right
    if kind in ("tconv", "unpool"):
        return transposed(src, k, s, p, d, n_in)
    return window(src, k, s, p, d)


def reshape(node, name: str, par: dict, shapes: dict) -> NodeRule:
    """Reshapes keep a map whose last two axes stay in place, read the one position of a 1x1
    map, and see the whole input once a larger map's spatial axes are flattened."""
    src = par["input"]
    shape_in, shape_out = tuple(shapes[src]), tuple(shapes[node])
    if shape_in[-2:] == (1, 1):
        return NodeRule("merge", True, (src,), lambda o: [(0, 0)])
    nd, dims = len(shape_in), [a for a in node.args[1:] if isinstance(a, int)]
    if name == "permute":
        dims = [d % nd for d in (node.args[1] if len(node.args) == 2 else node.args[1:])]
        moved = dims[-2:] != [nd - 2, nd - 1]
    else:
        moved = name == "transpose" and any(d % nd >= nd - 2 for d in dims)
    if len(shape_out) >= 3 and shape_out[-2:] == shape_in[-2:] and not moved:
        return NodeRule("merge", False, (src,), lambda o: [(0, o)])
    if len(shape_out) <= 2 or shape_out[-1] % (shape_in[-1] * shape_in[-2]) == 0:
        return NodeRule("whole", True)
    refuse(node, f"({name}) reshapes {shape_in} to {shape_out}, moving pixels")


def along(node, kind: str, name: str, par: dict, shapes: dict) -> NodeRule | None:
    """Ops along a dim: pointwise along channels (None); a reduction over a spatial axis sees
    the whole input; others (softmax, concatenation over space) are refused."""
    src = par["tensors"][0] if "tensors" in par else par["input"]
    nd, dim = len(shapes[src]), par.get("dim", None if kind == "reduce" else 1)
    if isinstance(dim, fx.Node) or dim is None and kind != "reduce":
        return None  # torch.max(x, y) is elementwise; softmax(dim=None) works on channels
    dims = range(nd) if dim is None else dim if isinstance(dim, (tuple, list)) else [dim]
    if not any(d % nd >= nd - 2 for d in dims):
        return None
    if kind == "reduce":
        return NodeRule("whole", True)
    refuse(node, f"({name}) works along the spatial dim {dim}")


def slice_rule(node, index, shape) -> NodeRule:
    """``x[..., a:b:s, a:b:s]``: output o reads input ``a + o s``."""
    index = list(index) if isinstance(index, tuple) else [index]
    if Ellipsis in index:
        at = index.index(Ellipsis)
        index[at:at + 1] = [slice(None)] * (len(shape) - len(index) + 1)
    index += [slice(None)] * (len(shape) - len(index))
    if len(index) != len(shape) or not all(isinstance(i, slice) for i in index[-2:]):
        refuse(node, f"indexes with {index}, dropping or adding a spatial axis")
    (a, _, step), (aw, _, sw) = index[-2].indices(shape[-2]), index[-1].indices(shape[-1])
    if (a, step) != (aw, sw):
        refuse(node, f"crops {index[-2:]}, not square")
    return geometry(node.args[0], lambda o: [(0, a + o * step)], step, a)
