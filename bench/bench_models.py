"""Every shipped network of the zoo: parameters, CPU inference time per 64 px image, val scores.

Each model runs on one thread, in eval mode, under ``torch.inference_mode``, on one
``(1, 3, 64, 64)`` image; the models take turns (``course_lib.utils.time_calls`` with a dict),
and the table quotes the median of 20 runs after 2 warm-up runs. The val mIoU and boundary F1
are the manifest's (``make test`` re-checks them against the checkpoints); the FCN targets of
lecture 06 are the paper's ordering, fcn32s < fcn16s < fcn8s on both; lecture 07's target is
a val mIoU of at least 0.97 for the best of its four encoder-decoders (stated in the title).
"""

from __future__ import annotations

import statistics

#: Lecture 07's four, trained with one recipe; the best must reach TARGET_MIOU.
ENCODER_DECODERS = ("unet", "segnet", "deeplabv3plus", "tiramisu")
TARGET_MIOU = 0.97


def run():
    import torch

    from course_lib import zoo
    from course_lib.utils import num_params, time_calls

    records = zoo.manifest()
    models = {name: zoo.load(name) for name in sorted(records)}
    x = torch.rand(1, 3, 64, 64)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            runs = time_calls({n: (lambda m=m: m(x)) for n, m in models.items()}, repeats=20,
                              warmup=2)
    finally:
        torch.set_num_threads(threads)
    names = [n for n in ("fcn32s", "fcn16s", "fcn8s") if n in records]
    ordered = len(names) == 3 and all(
        records[names[0]]["metrics"].get(k, 0) < records[names[1]]["metrics"].get(k, 0)
        < records[names[2]]["metrics"].get(k, 0) for k in ("miou", "boundary_f1"))
    encdec = {n: records[n]["metrics"]["miou"] for n in ENCODER_DECODERS if n in records}
    best = max(encdec, key=encdec.get, default=None)
    reached = len(encdec) == len(ENCODER_DECODERS) and encdec[best] >= TARGET_MIOU
    rows = []
    for name, model in models.items():
        metrics = records[name]["metrics"]
        bf1 = metrics.get("boundary_f1")
        target, met = "-", "-"
        if name.startswith("fcn"):
            target, met = "32s < 16s < 8s", "yes" if ordered else "NO"
        elif name in ENCODER_DECODERS:
            target, met = f"best >= {TARGET_MIOU}", "yes" if reached else "NO"
        rows.append([name, num_params(model), 1000 * statistics.median(runs[name]),
                     metrics["miou"], "-" if bf1 is None else bf1, target, met])
    line = (f"lecture 07 target, the best encoder-decoder reaches val mIoU >= {TARGET_MIOU}: "
            + ("MET" if reached else "NOT MET") + (f" ({best} {encdec[best]:.3f})" if best
                                                    else " (no checkpoint)"))
    return ("zoo models: CPU inference per 64 px image (one thread, median of 20)\n" + line,
            ["model", "params", "ms", "val mIoU", "val BF1", "target", "met"], rows)
