"""Receptive fields of real modules: traced graphs, or gradients when tracing fails.

:func:`receptive_field_of` traces a module with ``torch.fx`` and propagates exact fields
along its graph (rules in :mod:`course_lib.receptive_field.graph`); a module the tracer cannot
follow is measured by the input gradient of its centre output instead.

References
----------
- A. Araujo, W. Norris, J. Sim, "Computing Receptive Fields of Convolutional Neural
  Networks", Distill 2019. https://distill.pub/2019/computing-receptive-fields/
- PyTorch, "torch.fx": https://pytorch.org/docs/stable/fx.html
"""

from __future__ import annotations

import inspect
import itertools
import warnings
from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import fx, nn

from course_lib._checks import check_int, check_pair, type_name
from course_lib.receptive_field.effective import support_box
from course_lib.receptive_field.graph import node_rules
from course_lib.receptive_field.recurrence import RFInfo

__all__ = ["receptive_field_of", "RFFraction", "field_row"]


class RFFraction(Fraction):
    """A :class:`~fractions.Fraction` that formats like a float, as :func:`format_table`
    needs (before Python 3.12 a Fraction accepts no format spec).

    Examples
    --------
    >>> f"{RFFraction(1, 4):>5}|{RFFraction(1, 4):.2f}"
    '  1/4|0.25'
    """

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return format(float(self) if spec[-1:] in tuple("eEfFgG%") else str(self), spec)


def field_row(name: str, size: int, jump, start, output_size: int | None) -> RFInfo:
    """An :class:`RFInfo` with plain numbers: ``jump`` an int when whole, else an
    :class:`RFFraction`; ``start`` a float when a multiple of 1/2, else an RFFraction."""
    jump, start = Fraction(jump), Fraction(start)
    return RFInfo(name, int(size), int(jump) if jump.denominator == 1 else RFFraction(jump),
                  float(start) if start.denominator <= 2 else RFFraction(start), output_size)


def receptive_field_of(module: nn.Module, input_size: int | tuple[int, int] = (224, 224), *,
                       in_channels: int | None = None, pointwise: Sequence = ()
                       ) -> list[RFInfo]:
    """Receptive field of a real module, traced with ``torch.fx`` and propagated exactly.

    Every node of the graph gets the field of each output position along the **height**
    axis; layers must be square (a kernel, stride, padding, crop or scale that differs
    between height and width is refused). Rules (Araujo et al. 2019, generalised):

    - convolutions and pooling (modules and ``F.conv2d``, ``F.max_pool2d``, ...; dilation,
      ``ceil_mode``, ``padding="same"/"valid"``) read their window; padding positions count;
    - global pooling, a spatial mean and flattening a map larger than 1x1 see the whole
      input: ``size`` is the input height; adaptive pooling to k > 1 reads its windows;
    - pixel-wise ops (activations, norms, dropout, 1x1 convs) keep the field; merges (add,
      mul, cat along channels) take the union of the fields at each position, so branches
      (ResNet's 1x1 downsample) never count in series;
    - upsampling (interpolation as PyTorch computes it, ``ConvTranspose2d``, ``MaxUnpool2d``
      over its whole window, ``PixelShuffle``) reads only real inputs.

    Normalisation statistics are ignored (eval mode). ``size`` is the largest field over
    the output positions (they may differ after upsampling), a whole number of pixels.
    Output ``o`` sits at input position ``start + o * jump`` (after upsampling: where it
    samples; at a merge of different jumps, e.g. ``align_corners=True``, the grid of the
    input with the largest jump). ``jump`` is an int, an :class:`RFFraction` after
    upsampling by a factor that does not cancel; ``start`` a float, or an RFFraction.

    A module the tracer cannot follow (data-dependent ``if``) is measured instead by the
    support of the input gradient of its centre output (random inputs; a ``UserWarning``
    says so): that size is clipped by the input and holds for the centre unit only.

    Parameters
    ----------
    module : nn.Module
        Maps ``(1, C_in, H, W)`` to a map or a vector; run in eval mode, then restored.
    input_size : int or (H, W)
        The traced input is zeros of shape ``(1, C_in, H, W)``.
    in_channels : int, optional
        C_in; default that of the first ``nn.Conv2d`` / ``nn.ConvTranspose2d``.
    pointwise : sequence
        Module types, functions or method names that do not move pixels, for ops that have
        no rule.

    Returns
    -------
    list of RFInfo
        One row per node that changes the geometry (every conv and pool, named by module
        path as ``"features.28"``, or by node name), in execution order; the last row is
        the output (a row ``"output"`` is added if no earlier row describes it).
        ``output_size`` is the output height (None for a vector).

    Raises
    ------
    ValueError
        A node no rule covers (naming it and what to do), a non-square layer.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.MaxPool2d(2),
    ...                     nn.Upsample(scale_factor=2, mode="bilinear"))
    >>> [(r.name, r.size, r.jump, r.output_size) for r in receptive_field_of(net, 8)]
    [('0', 3, 1, 8), ('1', 4, 2, 4), ('2', 6, 1, 8)]
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be an nn.Module, got {type_name(module)}")
    input_size = check_pair("input_size", input_size, 1)
    x = torch.zeros(1, _in_channels(module, in_channels), *input_size, **_dtype_device(module))
    fixed = _fixed_arguments(module)
    training = module.training
    module.eval()
    try:
        try:
            graph = fx.symbolic_trace(module, concrete_args=fixed)
        except Exception as err:  # TraceError, isinstance checks on proxies...: no graph
            return _gradient_rows(module, x, f"{type_name(err)}: {err}")
        with torch.no_grad():
            rules, out = node_rules(graph, x, pointwise=tuple(pointwise))
        return _propagate(rules, out, input_size[0])
    finally:
        module.train(training)


def _in_channels(module: nn.Module, in_channels) -> int:
    if in_channels is not None:
        return check_int("in_channels", in_channels, 1)
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    conv = next((m for m in module.modules() if isinstance(m, convs)), None)
    if conv is None:
        raise ValueError(f"{type_name(module)} holds no nn.Conv2d: cannot infer C_in; pass "
                         "in_channels")
    return conv.in_channels


def _dtype_device(module: nn.Module) -> dict:
    tensors = itertools.chain(module.parameters(), module.buffers())
    ref = next((t for t in tensors if t.is_floating_point()), None)
    return {} if ref is None else dict(dtype=ref.dtype, device=ref.device)


def _fixed_arguments(module: nn.Module) -> dict:
    """``forward``'s arguments after the input, fixed to their defaults for the tracer."""
    params = list(inspect.signature(module.forward).parameters.values())[1:]
    required = [p.name for p in params if p.default is p.empty and p.kind in (
        p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if required:
        raise ValueError(f"{type_name(module)}.forward needs more than one input (also "
                         f"{required}); wrap it in a module that takes only the image")
    return {p.name: p.default for p in params if p.default is not p.empty}


def _propagate(rules: dict, out, height: int) -> list[RFInfo]:
    """Fields of every position each node needs (backwards), then fields and rows (forwards)."""
    need = {n: [0, r.height] for n, r in rules.items() if not r.flat}
    for node, rule in reversed(rules.items()):
        if node in need and rule.reads is not None:
            for o in range(*need[node]):
                for k, i in rule.reads(o):
                    span = need.get(rule.inputs[k])
                    if span is not None:
                        span[0], span[1] = min(span[0], i), max(span[1], i + 1)
    fields, coords, rows, last = {}, {}, [], None
    for node, rule in rules.items():
        fields[node] = field = _field(rule, need.get(node), fields, rules, height)
        real = [field] if rule.flat else field[1][-field[0]:rule.height - field[0]]
        size = max((hi - lo for lo, hi in filter(None, real)), default=0)
        coords[node] = state = (size, *_coords(rule, coords, rules, height))
        if rule.kind in ("geometry", "whole") or rule.kind == "merge" and all(
                coords[n] != state for n in rule.inputs):
            rows.append(field_row(rule.label, *state, rule.output_size))
            last = node
    if out is not None and out is not last and (last is None or coords[out] != coords[last]):
        rows.append(field_row("output", *coords[out], rules[out].output_size))
    return rows


def _field(rule, span, fields: dict, rules: dict, height: int):
    """``(first, [(lo, hi) or None per position])`` of a map, or one ``(lo, hi)`` if flat."""
    if rule.kind == "input":
        return span[0], [(i, i + 1) for i in range(*span)]
    if rule.kind in ("const", "whole"):
        return (0, height) if rule.kind == "whole" else None

    def union(o):
        got = []
        for k, i in rule.reads(o):
            src = rule.inputs[k]
            got.append(fields[src] if rules[src].flat else fields[src][1][i - fields[src][0]])
        got = [g for g in got if g is not None]
        return (min(g[0] for g in got), max(g[1] for g in got)) if got else None

    return union(0) if rule.flat else (span[0], [union(o) for o in range(*span)])


def _coords(rule, coords: dict, rules: dict, height: int) -> tuple[Fraction, Fraction]:
    """``(jump, start)``: output o sits at input position ``start + o * jump``."""
    if rule.kind in ("input", "const"):
        return Fraction(1), Fraction(1, 2)
    if rule.kind == "whole":
        return Fraction(height), Fraction(height, 2)
    if rule.kind == "geometry":
        (_, jump, start), (a, b) = coords[rule.inputs[0]], rule.affine
        return jump * a, start + b * jump
    ins = [coords[n] for n in rule.inputs if coords[n][0] > 0 and not rules[n].flat] or [
        coords[n] for n in rule.inputs]  # maps set the grid; broadcast one-field tensors not
    jump = max(j for _, j, _ in ins)  # a merge: the map of the inputs with the largest jump
    ins = [(z, s) for z, j, s in ins if j == jump]  # (a U-Net skip's, not its upsampled
    lo = min(s - Fraction(z, 2) for z, s in ins)  # decoder's), centred on the interval
    return jump, (lo + max(s + Fraction(z, 2) for z, s in ins)) / 2  # covering their fields


def _gradient_rows(module: nn.Module, x: torch.Tensor, reason: str) -> list[RFInfo]:
    """One row measured by gradients: the support of d(centre output) / d(input)."""
    if x.device.type == "meta":
        raise ValueError(f"torch.fx cannot trace {type_name(module)} ({reason}) and a module "
                         "on the meta device has no gradients to measure; build it on the CPU")
    warnings.warn(f"receptive_field_of: torch.fx cannot trace {type_name(module)} ({reason}); "
                  "measured the support of the input gradient of the centre output instead "
                  "(clipped by the input: use an input_size larger than the field)",
                  UserWarning, stacklevel=3)
    gen, total = torch.Generator().manual_seed(0), torch.zeros(x.shape[-2:], dtype=torch.float64)
    for _ in range(3):
        image = torch.randn(x.shape, generator=gen).to(x).requires_grad_(True)
        with torch.enable_grad():
            out = module(image)
            out = next(iter(out.values() if isinstance(out, dict) else out)) \
                if isinstance(out, (tuple, list, dict)) else out
            centre = out.shape[-2] // 2 if out.dim() >= 3 else 0
            unit = out[0, ..., centre, out.shape[-1] // 2] if out.dim() >= 3 else out[0]
            (grad,) = torch.autograd.grad(unit.sum(), image, allow_unused=True)
        if grad is not None:
            total += grad[0].abs().sum(0).double().cpu()
    y0, _, y1, _ = support_box(total)
    n_out = out.shape[-2] if out.dim() >= 3 else None
    jump = Fraction(x.shape[-2], n_out or 1)
    return [field_row("output", y1 - y0, jump, Fraction(y0 + y1, 2) - centre * jump, n_out)]
