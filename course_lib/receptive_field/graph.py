"""Receptive fields along a traced module graph: exact fields of every output position.

The ``torch.fx`` graph runs once to record every shape and non-tensor value. Then, along the
height axis, each node gets, for every output position ``o``, the interval ``[lo, hi)`` of
input pixels it depends on (pixel ``i`` spans ``[i, i + 1]``): a rule per op says which input
positions an output reads, so branches, merges (unions), strides and upsampling compose
exactly. As in Araujo et al., padding positions count (maps extend past their borders);
resampling ops read only real inputs, as PyTorch does. Each node also carries a coordinate
map: output ``o`` sits at input position ``start + o * jump``.

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
- W. Luo, Y. Li, R. Urtasun, R. Zemel, "Understanding the Effective Receptive Field in Deep
  Convolutional Neural Networks", NeurIPS 2016. https://arxiv.org/abs/1701.04128
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from course_lib.receptive_field._rules import (
    NodeRule,
    along,
    refuse,
    resampling,
    reshape,
    slice_rule,
)

__all__ = ["NodeRule", "node_rules"]

_WORDS = {
    "merge": "add sub rsub mul div true_divide truediv floordiv floor_divide neg pos pow abs exp "
             "log sqrt rsqrt square relu relu6 leaky_relu elu selu celu gelu silu mish hardswish "
             "hardsigmoid hardtanh sigmoid tanh softplus softsign logsigmoid threshold clamp clip "
             "clamp_min clamp_max maximum minimum where dropout dropout2d alpha_dropout "
             "feature_alpha_dropout batch_norm instance_norm group_norm layer_norm normalize "
             "local_response_norm contiguous clone detach float double half to type_as iadd "
             "isub imul itruediv channel_shuffle stochastic_depth",
    "reshape": "view reshape flatten unflatten squeeze unsqueeze expand expand_as permute "
               "transpose",
    "reduce": "mean sum amax amin max min std var norm logsumexp prod",
    "dim": "softmax log_softmax softmin glu cat split chunk",
    "const": "new_zeros new_ones new_full new_empty zeros_like ones_like full_like empty_like"}
_KINDS = {word: kind for kind, words in _WORDS.items() for word in words.split()}
_ELEMENTWISE = ("activation", "dropout", "batchnorm", "instancenorm", "normalization")
_MODULES = ((nn.Conv2d, "conv"), (nn.ConvTranspose2d, "tconv"), (nn.MaxUnpool2d, "unpool"),
            ((nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d), "pool"), (nn.Upsample, "interp"),
            ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "adaptive"),
            (nn.PixelShuffle, "shuffle"), (nn.PixelUnshuffle, "unshuffle"),
            ((nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d), "pad"),
            ((nn.Flatten, nn.Unflatten), "reshape"), (nn.MultiheadAttention, None),
            ((nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.GLU), "dim"), (nn.Identity, "merge"))
_POOL = ("input", "kernel_size", "stride", "padding", "dilation")
_FUNCTIONS = {
    torch.conv2d: ("conv", ("input", "weight", "bias", "stride", "padding", "dilation")),
    torch.conv_transpose2d: ("tconv", ("input", "weight", "bias", "stride", "padding",
                                       "output_padding", "groups", "dilation")),
    F.max_unpool2d: ("unpool", ("input", "indices", "kernel_size", "stride", "padding")),
    F.max_pool2d: ("pool", _POOL), torch.max_pool2d: ("pool", _POOL),
    F.max_pool2d_with_indices: ("pool", _POOL), F.avg_pool2d: ("pool", _POOL[:4]),
    F.lp_pool2d: ("pool", ("input", "norm_type", "kernel_size", "stride")),
    F.adaptive_avg_pool2d: ("adaptive", ("input", "output_size")),
    F.adaptive_max_pool2d: ("adaptive", ("input", "output_size")),
    F.interpolate: ("interp", ("input", "size", "scale_factor", "mode", "align_corners",
                               "recompute_scale_factor", "antialias")),
    F.pixel_shuffle: ("shuffle", ("input", "upscale_factor")),
    F.pixel_unshuffle: ("unshuffle", ("input", "downscale_factor")),
    F.pad: ("pad", ("input", "pad")),
}
_ARGS = {"cat": ("tensors", "dim"), "split": ("input", "n", "dim"), "chunk": ("input", "n", "dim")}
_TUPLE = object()  # the recorded value of a node returning a tuple of tensors
_ATTRS = ("kernel_size", "stride", "padding", "dilation", "output_size", "size", "scale_factor",
          "mode", "align_corners", "recompute_scale_factor", "upscale_factor",
          "downscale_factor", "dim")




def _identify(node, gm, values: dict, shapes: dict, pointwise: tuple):
    """``(kind, name, arguments)`` of a call node; kind None when no rule covers it."""
    resolve = lambda v: fx.node.map_arg(v, lambda n: n if n in shapes else values.get(n))
    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        par = {"input": node.args[0], **{a: getattr(mod, a) for a in _ATTRS if hasattr(mod, a)}}
        where = type(mod).__module__.split(".")
        elementwise = where[:2] == ["torch", "nn"] and where[-1] in _ELEMENTWISE
        kind = next((k for cls, k in _MODULES if isinstance(mod, cls)),
                    "merge" if elementwise else None)
        if isinstance(mod, tuple(t for t in pointwise if isinstance(t, type))):
            kind = "merge"
        return kind, type(mod).__name__.lower(), par
    target = node.target
    if node.op == "call_function" and target in _FUNCTIONS:
        kind, names = _FUNCTIONS[target]
        par = dict(resolve({**dict(zip(names, node.args)), **node.kwargs}))
        if kind in ("conv", "tconv") and "weight" in par:
            par["kernel_size"] = tuple(shapes[par["weight"]][-2:])
        return kind, target.__name__, par
    name = target if isinstance(target, str) else getattr(target, "__name__", "?")
    if target in pointwise:
        return "merge", name, {}
    owners = (torch, F, operator, torch.Tensor)  # and torchvision.ops (stochastic_depth)
    if not isinstance(target, str) and not any(getattr(m, name, None) is target for m in owners) \
            and not getattr(target, "__module__", "").startswith("torchvision.ops"):
        return None, name, {}
    word = name if name in _KINDS or not name.endswith("_") else name[:-1]  # in-place relu_
    par = resolve({**dict(zip(_ARGS.get(word, ("input", "dim")), node.args)), **node.kwargs})
    return _KINDS.get(word), word, par


def _rule(node, gm, rules: dict, shapes: dict, values: dict, pointwise: tuple, dtype
          ) -> NodeRule:
    """The rule of one tensor-valued node."""
    if node.op == "placeholder":
        return NodeRule("input")
    live = [n for n in node.all_input_nodes if n in rules and rules[n].kind != "const"]
    if node.op == "get_attr" or not live:
        return NodeRule("const", True)
    if all(rules[n].flat for n in live):  # a function of one-field tensors has that field
        return NodeRule("merge", True, tuple(live), lambda o: [(k, 0) for k in range(len(live))])
    if node.target is operator.getitem:
        src = node.args[0]
        if values.get(src) is _TUPLE:  # max_pool2d(..., return_indices=True)[0], split(x)[1]
            return NodeRule("merge", False, (src,), lambda o: [(0, o)])
        index = fx.node.map_arg(node.args[1], lambda n: values.get(n))
        return slice_rule(node, index, shapes[src])
    kind, name, par = _identify(node, gm, values, shapes, pointwise)
    if kind in ("conv", "tconv", "unpool", "pool", "adaptive", "interp", "shuffle", "unshuffle",
                "pad"):
        return resampling(node, kind, par, shapes, dtype)
    if kind == "reshape":
        return reshape(node, name, par, shapes)
    if kind in ("dim", "reduce"):
        rule = along(node, kind, name, par, shapes)
        if rule is not None:
            return rule
        kind = "merge"
    if kind == "const":  # zeros_like(x): no field
        return NodeRule("const", True)
    if kind != "merge":
        what = f"module {node.target!r}" if node.op == "call_module" else f"{node.op} {name!r}"
        refuse(node, f"({what}) has no receptive-field rule")
    at = [not rules[n].flat and shapes[n][-2] == shapes[node][-2] for n in live]  # else: 1
    return NodeRule("merge", False, tuple(live),
                    lambda o: [(k, o if at[k] else 0) for k in range(len(live))])


def _record(gm: fx.GraphModule, example: torch.Tensor) -> tuple[dict, dict]:
    """Run ``gm(example)``: the shape of every tensor node (the first tensor of a tuple) and
    the value of every other node (``_TUPLE`` for tuples of tensors)."""
    shapes, values = {}, {}

    class Recorder(fx.Interpreter):
        def run_node(self, node):
            out = super().run_node(node)
            items = out if isinstance(out, (tuple, list)) else [out]
            first = next((t for t in items if isinstance(t, torch.Tensor)), None)
            if first is None:
                values[node] = out
            else:
                shapes[node] = first.shape
                values[node] = None if first is out else _TUPLE
            return out

    Recorder(gm).run(example)
    return shapes, values


def node_rules(gm: fx.GraphModule, example: torch.Tensor, *, pointwise: tuple = ()
               ) -> tuple[dict, fx.Node | None]:
    """The :class:`NodeRule` of every tensor node of a traced graph, in execution order.

    Parameters
    ----------
    gm : torch.fx.GraphModule
        From ``torch.fx.symbolic_trace``; run once on ``example``.
    example : torch.Tensor, shape (1, C, H, W)
        Fixes every shape (zeros will do, on any device, meta included).
    pointwise : tuple
        Module types, functions or method names to treat as pixel-wise.

    Returns
    -------
    rules : dict
        ``{node: NodeRule}``.
    out : torch.fx.Node or None
        The node the graph returns (the first tensor of a tuple or dict).

    Raises
    ------
    ValueError
        For a node no rule covers or a layer that is not square, naming the node.
    """
    shapes, values = _record(gm, example)
    dtype = example.dtype if example.dtype in (torch.float32, torch.float64) else torch.float32
    rules, out = {}, None
    for node in gm.graph.nodes:
        if node.op == "output":
            out = next((n for n in node.all_input_nodes if n in rules), None)
        elif node in shapes:
            rule = _rule(node, gm, rules, shapes, values, pointwise, dtype)
            shape = shapes[node]
            rule.height = 1 if rule.flat else shape[-2]
            rule.output_size = shape[-2] if not rule.flat or len(shape) == 4 else None
            rule.label = node.target if node.op == "call_module" else node.name
            rules[node] = rule
    return rules, out
