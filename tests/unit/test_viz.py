import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from course_lib import viz  # noqa: E402


def test_palette_is_bright_then_voc_and_fixed():
    assert viz.PALETTE.shape == (256, 3) and viz.PALETTE.dtype == np.uint8
    assert viz.PALETTE[:4].tolist() == [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25]]
    assert viz.PALETTE[21:255].tolist() == viz._voc_palette()[21:255].tolist()
    bright = viz.PALETTE[1:4].astype(float) @ [0.299, 0.587, 0.114]
    assert bright.min() > 70  # no dark class colour: they must read on a photo
    assert viz.PALETTE[255].tolist() == [255, 255, 255]
    assert len({tuple(c) for c in viz.PALETTE[:255]}) == 255
    with pytest.raises(ValueError):
        viz.PALETTE[0, 0] = 1


def test_colorize_and_overlay():
    mask = torch.tensor([[0, 1], [2, 255]])
    rgb = viz.colorize(mask)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.float32
    assert np.allclose(rgb[1, 1], 1.0) and np.allclose(rgb[0, 1], [230 / 255, 25 / 255, 75 / 255])
    image = torch.full((3, 2, 2), 0.5)
    out = viz.overlay(image, mask, alpha=1.0, outline=False, dim=0.0)
    assert np.allclose(out[0, 0], 0.5) and np.allclose(out[0, 1], rgb[0, 1])
    plain = viz.overlay(image.permute(1, 2, 0).numpy(), mask, 0.0, outline=False, dim=0.0)
    assert np.allclose(plain, 0.5)
    assert np.allclose(viz.overlay(image, mask, 0.0, outline=False)[0, 0], 0.5 * 0.55)


def test_overlay_outlines_objects_and_dims_the_background():
    image = np.full((9, 9, 3), 0.8, np.float32)
    mask = np.zeros((9, 9), np.int64)
    mask[2:7, 2:7] = 1
    out = viz.overlay(image, mask, alpha=0.3, dim=0.5)
    colour = viz.PALETTE[1] / 255
    np.testing.assert_allclose(out[2, 4], colour, rtol=1e-6)  # border: the full class colour
    np.testing.assert_allclose(out[4, 4], 0.7 * 0.8 + 0.3 * colour, rtol=1e-6)  # light fill
    np.testing.assert_allclose(out[1, 4], 0.0)  # a black rim just outside the object
    np.testing.assert_allclose(out[0, 0], 0.4)  # background darkened (towards black)
    no_line = viz.overlay(image, mask, alpha=0.3, outline=False, dim=0.5)
    np.testing.assert_allclose(no_line[2, 4], no_line[4, 4])


def test_legend_draws_background_honestly_or_leaves_it_out():
    handles = viz.legend_handles(["background", "circle"])
    assert [h.get_label() for h in handles] == ["background", "circle"]
    assert handles[0].get_facecolor()[:3] == (0.0, 0.0, 0.0)
    assert handles[0].get_edgecolor()[:3] != handles[0].get_facecolor()[:3]  # visible
    assert [h.get_label() for h in viz.legend_handles(["bg", "x"], background=False)] == ["x"]
    fig = viz.show_grid([torch.rand(3, 8, 8)], [torch.ones(8, 8, dtype=torch.long)],
                        class_names=["bg", "x"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["bg", "x"]


@pytest.mark.parametrize("call, exc, match", [
    (lambda: viz.colorize(torch.zeros(2, 2, 2, dtype=torch.long)), ValueError, r"\(H, W\)"),
    (lambda: viz.colorize(torch.zeros(2, 2)), TypeError, "integer labels"),
    (lambda: viz.colorize(torch.tensor([[256]])), ValueError, r"\[0, 255\]"),
    (lambda: viz.overlay(torch.zeros(3, 2, 2), torch.zeros(3, 3, dtype=torch.long)),
     ValueError, "sizes differ"),
    (lambda: viz.overlay(torch.zeros(3, 2, 2), torch.zeros(2, 2, dtype=torch.long), 2.0),
     ValueError, "alpha"),
    (lambda: viz.overlay(torch.zeros(3, 2, 2), torch.zeros(2, 2, dtype=torch.long), dim=-1),
     ValueError, "dim"),
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
