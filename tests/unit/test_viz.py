import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import viz  # noqa: E402


def test_palette_is_voc_and_fixed():
    assert viz.PALETTE.shape == (256, 3) and viz.PALETTE.dtype == np.uint8
    assert viz.PALETTE[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert viz.PALETTE[255].tolist() == [255, 255, 255]
    assert len({tuple(c) for c in viz.PALETTE[:255]}) == 255
    with pytest.raises(ValueError):
        viz.PALETTE[0, 0] = 1


def test_colorize_and_overlay():
    mask = torch.tensor([[0, 1], [2, 255]])
    rgb = viz.colorize(mask)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.float32
    assert np.allclose(rgb[1, 1], 1.0) and np.allclose(rgb[0, 1], [128 / 255, 0, 0])
    image = torch.full((3, 2, 2), 0.5)
    out = viz.overlay(image, mask, alpha=1.0)
    assert np.allclose(out[0, 0], 0.5) and np.allclose(out[0, 1], rgb[0, 1])
    assert np.allclose(viz.overlay(image.permute(1, 2, 0).numpy(), mask, 0.0), 0.5)


@pytest.mark.parametrize("call, exc, match", [
    (lambda: viz.colorize(torch.zeros(2, 2, 2, dtype=torch.long)), ValueError, r"\(H, W\)"),
    (lambda: viz.colorize(torch.zeros(2, 2)), TypeError, "integer labels"),
    (lambda: viz.colorize(torch.tensor([[256]])), ValueError, r"\[0, 255\]"),
    (lambda: viz.overlay(torch.zeros(3, 2, 2), torch.zeros(3, 3, dtype=torch.long)),
     ValueError, "sizes differ"),
    (lambda: viz.overlay(torch.zeros(3, 2, 2), torch.zeros(2, 2, dtype=torch.long), 2.0),
     ValueError, "alpha"),
    (lambda: viz.overlay(torch.zeros(5, 2, 2), torch.zeros(2, 2, dtype=torch.long)),
     ValueError, "image must have shape"),
    (lambda: viz.show_grid([]), ValueError, "at least one image"),
    (lambda: viz.show_grid([torch.zeros(3, 4, 4)], [torch.zeros(4, 4)] * 2), ValueError,
     "1 images but 2 masks"),
    (lambda: viz.show_grid([torch.zeros(3, 4, 4)], titles=["a", "b"]), ValueError, "titles"),
    (lambda: viz.show_grid([torch.zeros(3, 4, 4)], ncols=0), ValueError, "ncols"),
    (lambda: viz.plot_history({"loss": [1]}, ["miou"]), ValueError, "history has no"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_figures_have_expected_panels():
    images = [torch.rand(3, 8, 8) for _ in range(5)]
    masks = [torch.randint(0, 4, (8, 8)) for _ in range(5)]
    fig = viz.show_grid(images, masks, titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 12 and fig.axes[0].get_title() == "a"
    ax = viz.plot_history({"loss": [3, 2, 1], "miou": [0.1, 0.5, 0.7]})
    assert len(ax.lines) == 2 and ax.get_xlabel() == "epoch"
    ax = viz.plot_history({"loss": [3, 2]}, xlabel="evaluation")
    assert ax.get_xlabel() == "evaluation"
    assert [h.get_label() for h in viz.legend_handles(["bg", "x"])] == ["bg", "x"]
