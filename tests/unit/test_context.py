import pytest
import torch
import torch.nn.functional as F

from course_lib.datasets import NUM_CLASSES
from course_lib.models.context import (
    FIELD,
    OUTPUT_STRIDE,
    MultiScaleNet,
    RecurrentCNN,
    SingleScaleNet,
    feature_extractor,
    multiscale_net,
    pixel_classifier,
    recurrent_cnn,
    single_scale_net,
)
from course_lib.receptive_field import receptive_field_of


@pytest.mark.parametrize("builder", [single_scale_net, multiscale_net, recurrent_cnn])
def test_builders_map_images_to_full_resolution_logits(builder):
    torch.manual_seed(0)
    model = builder(num_classes=NUM_CLASSES)
    out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, NUM_CLASSES, 64, 64) and out.dtype == torch.float32
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_feature_extractor_stride_and_field_match_the_constants():
    features = feature_extractor(3, 8)
    assert features(torch.zeros(1, 3, 64, 64)).shape == (1, 16, 64 // OUTPUT_STRIDE, 64 // 4)
    assert receptive_field_of(features, 64)[-1].size == FIELD == 16


def test_print_explains_the_architecture():
    text = str(multiscale_net())
    assert "scales=(1.0, 0.5, 0.25)" in text and "(features): Sequential" in text
    assert "(classifier): Sequential" in text and "(score): Conv2d(32, 4" in text
    assert "iterations=3" in str(recurrent_cnn()) and "previous class" in str(recurrent_cnn())
    assert "single scale" in str(single_scale_net())


def test_multiscale_shares_one_feature_extractor_over_the_pyramid():
    torch.manual_seed(0)
    net = multiscale_net(width=4, hidden=None).eval()
    single = sum(p.numel() for p in net.features.parameters())
    assert single == sum(p.numel() for p in feature_extractor(3, 4).parameters())
    assert net.classifier.score.in_channels == 3 * 2 * 4  # three levels of 8 channels
    x = torch.rand(2, 3, 32, 32)
    levels = net.pyramid(x)
    assert [tuple(level.shape[-2:]) for level in levels] == [(32, 32), (16, 16), (8, 8)]
    # Recompute by hand: the same features on every level, upsampled to the first level's
    # feature size (32 / 4 = 8), concatenated, classified, logits upsampled to the image.
    maps = [F.interpolate(net.features(level), size=(8, 8), mode="bilinear",
                          align_corners=False) for level in levels]
    expected = F.interpolate(net.classifier(torch.cat(maps, 1)), size=(32, 32),
                             mode="bilinear", align_corners=False)
    torch.testing.assert_close(net(x), expected)
    # Changing the shared weights changes every level's contribution.
    assert isinstance(net, MultiScaleNet) and len(list(net.children())) == 2


def test_recurrent_feeds_back_softmax_starting_uniform():
    torch.manual_seed(0)
    net = recurrent_cnn(num_classes=3, iterations=3, width=4).eval()
    assert isinstance(net, RecurrentCNN) and isinstance(net.network, SingleScaleNet)
    x = torch.rand(2, 3, 16, 16)
    outs = net(x, return_all=True)
    assert len(outs) == 3 and all(o.shape == (2, 3, 16, 16) for o in outs)
    torch.testing.assert_close(net(x), outs[-1])
    probs = torch.full((2, 3, 16, 16), 1 / 3)
    for out in outs:  # the same network, run by hand
        expected = net.network(torch.cat([x, probs], 1))
        torch.testing.assert_close(out, expected)
        probs = expected.softmax(1)
    assert net.network.features.conv1.in_channels == 3 + 3


def test_norm_options_and_why_the_recurrent_net_has_no_batch_norm():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    # GroupNorm and no normalisation treat each image alone: training and eval modes agree.
    for net in (recurrent_cnn(width=4), recurrent_cnn(width=4, norm="none")):
        with torch.no_grad():
            torch.testing.assert_close(net.train()(x), net.eval()(x))
    # BatchNorm's running statistics average over the iterations' different inputs, so the
    # evaluated network differs from the trained one even after the statistics settle.
    net = recurrent_cnn(width=4, norm="batch").train()
    with torch.no_grad():
        for _ in range(50):
            train_out = net(x)
        assert not torch.allclose(train_out, net.eval()(x), atol=1e-3)
    assert isinstance(single_scale_net(width=4).features.norm1, torch.nn.BatchNorm2d)
    assert isinstance(single_scale_net(width=4, norm="group").features.norm1,
                      torch.nn.GroupNorm)
    assert isinstance(recurrent_cnn(width=4).network.features.norm1, torch.nn.GroupNorm)
    plain = recurrent_cnn(width=4, norm="none").network.features
    assert not hasattr(plain, "norm1") and plain.conv1.bias is not None


def test_recurrent_iterations_share_weights():
    one = recurrent_cnn(iterations=1, width=4)
    three = recurrent_cnn(iterations=3, width=4)
    assert sum(p.numel() for p in one.parameters()) == sum(p.numel() for p in three.parameters())


def test_pixel_classifier_linear_and_mlp():
    assert [n for n, _ in pixel_classifier(8, 4).named_children()] == ["fc", "relu", "score"]
    assert [n for n, _ in pixel_classifier(8, 4, hidden=None).named_children()] == ["score"]


@pytest.mark.parametrize("call, exc, match", [
    (lambda: single_scale_net(num_classes=1), ValueError,
     "num_classes must be an int >= 2, got 1"),
    (lambda: single_scale_net(width=0), ValueError, "width must be an int >= 1, got 0"),
    (lambda: single_scale_net(hidden=2.5), TypeError, "hidden must be an int, got 2.5"),
    (lambda: multiscale_net(scales=(1, 1)), ValueError,
     r"scales must be distinct floats in \(0, 1\]"),
    (lambda: multiscale_net(scales=(1, 2)), ValueError, r"scales must be distinct floats"),
    (lambda: multiscale_net(scales=()), ValueError, r"scales must be distinct floats"),
    (lambda: multiscale_net(scales="ab"), TypeError, r"scales must be a sequence of floats"),
    (lambda: multiscale_net(num_classes=True), TypeError, "num_classes must be an int"),
    (lambda: recurrent_cnn(iterations=0), ValueError, "iterations must be an int >= 1, got 0"),
    (lambda: recurrent_cnn(width=-1), ValueError, "width must be an int >= 1"),
    (lambda: feature_extractor(0, 4), ValueError, "in_channels must be an int >= 1"),
    (lambda: pixel_classifier(4, 1), ValueError, "num_classes must be an int >= 2"),
    (lambda: feature_extractor(3, 4, norm="layer"), ValueError,
     "norm must be 'batch', 'group' or 'none'"),
    (lambda: multiscale_net(norm=None), ValueError,
     "norm must be 'batch', 'group' or 'none', got None"),
])
def test_builders_reject_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()




def test_builders_are_keyword_only():
    with pytest.raises(TypeError):
        single_scale_net(4)


@pytest.mark.parametrize("model, x, match", [
    (single_scale_net(), torch.zeros(3, 64, 64), r"shape \(N, 3, H, W\), got \(3, 64, 64\)"),
    (single_scale_net(), torch.zeros(1, 1, 64, 64), r"got \(1, 1, 64, 64\)"),
    (single_scale_net(), [1, 2], "got list"),
    (multiscale_net(), torch.zeros(1, 3, 8, 8), r"needs at least 16 x 16"),
    (recurrent_cnn(), torch.zeros(1, 7, 32, 32), r"shape \(N, 3, H, W\)"),
])
def test_forward_rejects_bad_inputs(model, x, match):
    with pytest.raises(ValueError, match=match):
        model(x)


def test_recurrent_batch_norm_per_iteration():
    # Shared convolutions, one BatchNorm per iteration: eval mode uses each iteration's own
    # statistics, so the trained and evaluated networks agree once the statistics settle.
    torch.manual_seed(0)
    net = recurrent_cnn(width=4, norm="batch", iteration_norms=True, iterations=3)
    shared = recurrent_cnn(width=4, norm="batch", iterations=3)
    convs = sum(p.numel() for p in shared.parameters())
    norms = sum(p.numel() for p in net.iteration_norms.parameters())
    assert sum(p.numel() for p in net.parameters()) == convs + norms
    assert len(net.iteration_norms) == 2 and "batch norm per iteration" in str(net)
    for m in net.modules():  # let the running statistics follow the batch at once
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        train_out = net.train()(x)
        # (up to the unbiased vs biased variance of the running statistics)
        torch.testing.assert_close(train_out, net.eval()(x), atol=1e-2, rtol=0)
    # Iteration 0 is the plain network; the later ones differ only by their norms.
    outs = net(x, return_all=True)
    torch.testing.assert_close(outs[0], net.network(torch.cat([x, torch.full((4, 4, 32, 32),
                                                                             0.25)], 1)))
    with pytest.raises(ValueError, match="iteration_norms=True needs BatchNorm layers"):
        recurrent_cnn(width=4, norm="group", iteration_norms=True)


def test_recurrent_step_unrolls_forward():
    torch.manual_seed(0)
    net = recurrent_cnn(width=4, norm="batch", iteration_norms=True, iterations=3).eval()
    x = torch.rand(2, 3, 16, 16)
    probs = torch.full((2, 4, 16, 16), 0.25)
    for t, out in enumerate(net(x, return_all=True)):
        expected = net.step(torch.cat([x, probs], 1), t)
        torch.testing.assert_close(out, expected)
        probs = expected.softmax(1)
