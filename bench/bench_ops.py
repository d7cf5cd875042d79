"""conv2d from scratch (im2col + matmul) vs torch.nn.functional.conv2d.

Target: the im2col version within 5x of ``F.conv2d`` on an (8, 16, 128, 128) float32 input
with 32 3x3 filters, padding 1. The two run interleaved (ours, theirs, ours, ...) and the
ratio is the median of the per-pair ratios, so a load spike on a shared machine hits both.
The depthwise 3x3 convolution (``groups=16``, as in DeepLabv3+) on the same input is
reported too, without a target.
"""

from __future__ import annotations

import statistics
import time


def _interleaved(fn_a, fn_b, repeats: int = 7) -> tuple[float, float, float]:
    """Median seconds of ``fn_a`` and ``fn_b`` and the median of their per-pair ratios."""
    fn_a(), fn_b()  # warm-up
    pairs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn_a()
        mid = time.perf_counter()
        fn_b()
        pairs.append((mid - start, time.perf_counter() - mid))
    a, b = zip(*pairs)
    return statistics.median(a), statistics.median(b), statistics.median(x / y for x, y in pairs)


def run():
    import torch
    import torch.nn.functional as F

    from course_lib.ops import conv2d

    torch.manual_seed(0)
    x = torch.randn(8, 16, 128, 128)
    w = torch.randn(32, 16, 3, 3)
    b = torch.randn(32)
    with torch.no_grad():
        torch.testing.assert_close(conv2d(x, w, b, padding=1), F.conv2d(x, w, b, padding=1),
                                   rtol=1e-4, atol=1e-4)
        ours, ref, ratio = _interleaved(lambda: conv2d(x, w, b, padding=1),
                                        lambda: F.conv2d(x, w, b, padding=1))
        dw = torch.randn(16, 1, 3, 3)  # depthwise: one 3x3 filter per channel
        torch.testing.assert_close(conv2d(x, dw, padding=1, groups=16),
                                   F.conv2d(x, dw, padding=1, groups=16), rtol=1e-4, atol=1e-4)
        dw_ours, dw_ref, dw_ratio = _interleaved(lambda: conv2d(x, dw, padding=1, groups=16),
                                                 lambda: F.conv2d(x, dw, padding=1, groups=16))
    rows = [["course_lib.ops.conv2d (im2col)", ours * 1000, "", "", ""],
            ["F.conv2d", ref * 1000, "", "", ""],
            ["ratio im2col / F.conv2d", "", ratio, "within 5x", "yes" if ratio <= 5 else "NO"],
            ["depthwise (groups=16): im2col", dw_ours * 1000, "", "", ""],
            ["depthwise (groups=16): F.conv2d", dw_ref * 1000, "", "", ""],
            ["depthwise ratio im2col / F.conv2d", "", dw_ratio, "-", "-"]]
    return ("conv2d: (8,16,128,128) float32, 32 3x3 filters, padding 1 "
            f"(7 interleaved pairs, {torch.get_num_threads()} threads)",
            ["implementation", "ms", "ratio", "target", "met"], rows)
