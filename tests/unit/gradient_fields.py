"""Checks shared by the model tests: a one-batch overfit, and a network made monotone so
that the support of its input gradient is exactly its receptive field (the approach of
tests/unit/test_receptive_field_graph.py).

Not a test module (no ``test_`` prefix): ``tests/unit`` is on ``sys.path`` under pytest.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.receptive_field import support_box


def overfit_one_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int):
    """Adam (lr 1e-2) on one batch: ``(first loss, last loss, accuracy after, in eval mode)``."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    return first, loss.item(), accuracy


class AvgPoolWithIndices(nn.AvgPool2d):
    """A max pool's window, averaged; ``(pooled, None)`` in place of ``(pooled, indices)``."""

    def forward(self, x):
        return super().forward(x), None


class UnpoolAsWindow(nn.Module):
    """Max unpooling -> the pooled value on every position of its window (a depthwise
    transposed convolution of ones): the union over every index pattern, the library's rule
    (see tests/unit/test_receptive_field_graph.py)."""

    def __init__(self, unpool: nn.MaxUnpool2d):
        super().__init__()
        self.k, self.s, self.p = unpool.kernel_size, unpool.stride, unpool.padding

    def forward(self, x, indices=None, output_size=None):
        ones = x.new_ones(x.shape[1], 1, *self.k)  # (C, 1, k, k), one filter per channel
        out = F.conv_transpose2d(x, ones, stride=self.s, padding=self.p, groups=x.shape[1])
        return F.pad(out, [0, output_size[-1] - out.shape[-1], 0, output_size[-2]
                           - out.shape[-2]])  # the odd last row and column: no window


def monotone(net: nn.Module) -> nn.Module:
    """Positive weights, zero biases, BN in eval, average pools, window unpooling: every
    unit grows with every pixel of its field, so the input gradient's support is the field."""
    net = copy.deepcopy(net).eval()
    for module in list(net.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.constant_(module.weight, 1.0 / module.weight[0].numel())
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, child in list(module.named_children()):
            if isinstance(child, nn.MaxPool2d):
                pool = AvgPoolWithIndices if child.return_indices else nn.AvgPool2d
                setattr(module, name, pool(child.kernel_size, child.stride, child.padding,
                                           child.ceil_mode))
            elif isinstance(child, nn.MaxUnpool2d):
                setattr(module, name, UnpoolAsWindow(child))
    return net.requires_grad_(False)


def gradient_sides(net, size, rows, seeds=(0,)):
    """Height of the gradient support of output ``(row, centre)``, union over images."""
    sides = []
    for o in rows:
        total = torch.zeros(size, size)
        for seed in seeds:
            x = (torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed))
                 + 0.5).requires_grad_(True)
            out = net(x)
            (grad,) = torch.autograd.grad(out[0, :, o, out.shape[-1] // 2].sum(), x)
            total += grad[0].abs().sum(0)
        y0, _, y1, _ = support_box(total)
        sides.append(y1 - y0)
    return sides
