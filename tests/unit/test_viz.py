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


@pytest.mark.parametrize("shape", [(3, 5, 6), (1, 5, 6), (5, 6, 3), (5, 6, 1), (5, 6)])
def test_to_hwc_is_the_one_image_conversion(shape):
    x = torch.rand(*shape)
    out = viz.to_hwc(x)
    assert out.shape == (5, 6, 3) and out.dtype == np.float32
    grey_or_rgb = x.numpy().reshape(-1)
    assert np.isclose(out.sum() / (3 if x.numel() == 30 else 1), grey_or_rgb.sum(), rtol=1e-5)
    np.testing.assert_allclose(viz.to_hwc(np.full((2, 2), 255, np.uint8)), 1.0)
    with pytest.raises(ValueError, match="image must have shape"):
        viz.to_hwc(np.zeros((2, 5, 6)))


def test_show_table_markdown_and_errors(capsys):
    text = viz.show_table(["model", "mIoU", "ms"], [["a", 0.51234, 3], ["b", 1.0, 10]])
    assert text.splitlines() == ["| model | mIoU | ms |", "|---|---|---|", "| a | 0.512 | 3 |",
                                 "| b | 1.000 | 10 |"]
    assert "| a | 0.512 | 3 |" in capsys.readouterr().out  # no IPython here: printed
    assert viz.show_table(["x"], [[0.5]], digits=1, display=False) == "| x |\n|---|\n| 0.5 |"
    with pytest.raises(ValueError, match=r"rows \[1\] do not have 2 cells"):
        viz.show_table(["a", "b"], [[1, 2], [3]])


def test_show_predictions_layout_and_errors():
    import matplotlib.pyplot as plt

    images, truths = torch.rand(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8))
    fig = viz.show_predictions(images, truths, {"net a": truths, "net b": truths * 0},
                               title="t")
    axes = fig.axes
    assert len(axes) == 2 * 4
    assert [ax.get_title() for ax in axes[:4]] == ["image", "ground truth", "net a", "net b"]
    np.testing.assert_allclose(axes[1].images[0].get_array(), viz.colorize(truths[0]))
    plt.close(fig)
    with pytest.raises(TypeError, match="predictions must be a dict"):
        viz.show_predictions(images, truths, [truths])
    with pytest.raises(ValueError, match="the same number"):
        viz.show_predictions(images, truths[:1], {"a": truths})


def test_widget_render_path_writes_png_bytes():
    from course_lib.widgets._render import new_figure, png_image, show_figure

    fig = new_figure(2, 1)
    fig.subplots().plot([0, 1])
    image = png_image("300px")
    data = show_figure(image, fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and image.value == data
    assert image.layout.width == "300px"


def test_show_numbers_text_colour_follows_the_colour_map():
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3)
    viz.show_numbers(a, np.array([[0.0, 1.0]]), "blues")
    assert [t.get_color() for t in a.texts] == ["black", "white"]  # Blues: dark when high
    viz.show_numbers(b, np.array([[0.0, 1.0]]), cmap="viridis", fmt="{:.1f}")
    assert [t.get_color() for t in b.texts] == ["white", "black"]  # viridis: bright when high
    assert [t.get_text() for t in b.texts] == ["0.0", "1.0"] and b.get_title() == ""
    viz.show_numbers(c, np.zeros((13, 12)))
    assert not c.texts  # too many cells to annotate
    plt.close(fig)
    with pytest.raises(ValueError, match=r"array must have shape \(H, W\)"):
        viz.show_numbers(a, np.zeros(3))
