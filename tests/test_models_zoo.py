"""Tests for AlexNet, VGG16 and AdaptiveAvgPool2d: exact parameter counts, torchvision's state_dict layout,
outputs and per-layer shapes/MACs against PyTorch models written out with plain torch.nn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, nn, no_grad
from tinygrad_cnn.functional import adaptive_avg_pool2d
from tinygrad_cnn.models import alexnet, vgg16
from tinygrad_cnn.tools.summary import count_parameters, summary


def randn(*shape: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.fixture(scope="module")
def our_alexnet() -> nn.Module:
    return alexnet().eval()


@pytest.fixture(scope="module")
def our_vgg16() -> nn.Module:
    return vgg16().eval()


# ---- the reference: torchvision's definitions (torchvision/models/alexnet.py, vgg.py) in plain torch.nn ----

def torch_alexnet(num_classes: int = 1000):
    import torch
    from torch import nn as tnn

    class AlexNet(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), tnn.ReLU(inplace=True),
                tnn.MaxPool2d(kernel_size=3, stride=2),
                tnn.Conv2d(64, 192, kernel_size=5, padding=2), tnn.ReLU(inplace=True),
                tnn.MaxPool2d(kernel_size=3, stride=2),
                tnn.Conv2d(192, 384, kernel_size=3, padding=1), tnn.ReLU(inplace=True),
                tnn.Conv2d(384, 256, kernel_size=3, padding=1), tnn.ReLU(inplace=True),
                tnn.Conv2d(256, 256, kernel_size=3, padding=1), tnn.ReLU(inplace=True),
                tnn.MaxPool2d(kernel_size=3, stride=2),
            )
            self.avgpool = tnn.AdaptiveAvgPool2d((6, 6))
            self.classifier = tnn.Sequential(
                tnn.Dropout(p=0.5), tnn.Linear(256 * 6 * 6, 4096), tnn.ReLU(inplace=True),
                tnn.Dropout(p=0.5), tnn.Linear(4096, 4096), tnn.ReLU(inplace=True),
                tnn.Linear(4096, num_classes),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    with torch.device("meta"):  # layout only; weights come from our model
        return AlexNet().eval()


def torch_vgg16(num_classes: int = 1000):
    import torch
    from torch import nn as tnn

    cfg_d = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]

    class VGG(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers: list[tnn.Module] = []
            in_channels = 3
            for v in cfg_d:
                if v == "M":
                    layers += [tnn.MaxPool2d(kernel_size=2, stride=2)]
                else:
                    layers += [tnn.Conv2d(in_channels, v, kernel_size=3, padding=1), tnn.ReLU(inplace=True)]
                    in_channels = v
            self.features = tnn.Sequential(*layers)
            self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
            self.classifier = tnn.Sequential(
                tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(p=0.5),
                tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(p=0.5),
                tnn.Linear(4096, num_classes),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    with torch.device("meta"):
        return VGG().eval()


def with_our_weights(reference, model: nn.Module):
    """The torch model sharing our parameter arrays (no copy); also checks the keys and shapes match."""
    import torch

    reference.load_state_dict({k: torch.from_numpy(p.data) for k, p in model.named_parameters()}, assign=True)
    return reference


# ---- parameter counts and layout ------------------------------------------------------------------------

def test_exact_parameter_counts(our_alexnet: nn.Module, our_vgg16: nn.Module) -> None:
    assert count_parameters(our_alexnet) == 61_100_840
    assert count_parameters(our_vgg16) == 138_357_544


@pytest.mark.parametrize("name", ["alexnet", "vgg16"])
def test_state_dict_matches_torchvision_layout(name: str, request: pytest.FixtureRequest) -> None:
    pytest.importorskip("torch")
    model = request.getfixturevalue(f"our_{name}")
    reference = {"alexnet": torch_alexnet, "vgg16": torch_vgg16}[name]()
    ours = [(k, p.shape) for k, p in model.named_parameters()]
    theirs = [(k, tuple(t.shape)) for k, t in reference.state_dict().items()]
    assert ours == theirs
    assert ours[:3] == [("features.0.weight", ours[0][1]), ("features.0.bias", ours[1][1]),
                        ("features.3.weight" if name == "alexnet" else "features.2.weight", ours[2][1])]
    assert sum(int(np.prod(s)) for _, s in theirs) == count_parameters(model)


def test_default_initialisation_bounds(our_alexnet: nn.Module) -> None:
    # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, float32
    for name, fan_in in [("features.0", 3 * 11 * 11), ("classifier.1", 9216), ("classifier.6", 4096)]:
        layer = dict(our_alexnet.named_modules())[name]
        for p in (layer.weight, layer.bias):
            assert p.dtype == np.float32
            assert np.abs(p.data).max() <= np.float32(1 / np.sqrt(fan_in))
        assert np.abs(layer.weight.data).max() > 0.9 / np.sqrt(fan_in)  # thousands of draws reach the bound


# ---- forward passes against PyTorch ---------------------------------------------------------------------

def assert_same_output(model: nn.Module, reference, size: int) -> None:
    import torch

    x = randn(2, 3, size, size, seed=size).astype(np.float32)
    with no_grad():
        ours = model(Tensor(x)).data
    with torch.no_grad():
        theirs = reference(torch.from_numpy(x)).numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5 * np.abs(theirs).max())


def test_alexnet_forward_matches_pytorch_on_the_smallest_input() -> None:
    pytest.importorskip("torch")
    model = alexnet(num_classes=10).eval()
    # 63 -> conv1 15 -> pool 7 -> conv2 7 -> pool 3 -> conv3-5 3 -> pool 1 -> adaptive pool up to 6x6
    assert_same_output(model, with_our_weights(torch_alexnet(num_classes=10), model), 63)
    assert model.classifier[6].weight.shape == (10, 4096)


def test_alexnet_forward_224_matches_pytorch(our_alexnet: nn.Module) -> None:
    pytest.importorskip("torch")
    assert_same_output(our_alexnet, with_our_weights(torch_alexnet(), our_alexnet), 224)


def test_vgg16_forward_matches_pytorch_on_the_smallest_input(our_vgg16: nn.Module) -> None:
    pytest.importorskip("torch")
    assert_same_output(our_vgg16, with_our_weights(torch_vgg16(), our_vgg16), 32)  # 32 -> 1 -> adaptive 7x7


@pytest.mark.slow
def test_vgg16_forward_224_matches_pytorch(our_vgg16: nn.Module) -> None:
    pytest.importorskip("torch")
    assert_same_output(our_vgg16, with_our_weights(torch_vgg16(), our_vgg16), 224)


def test_too_small_inputs_fail_clearly(our_alexnet: nn.Module, our_vgg16: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"max_pool2d: kernel \(3, 3\).*larger than the padded input \(2, 2\)"):
        our_alexnet(Tensor(np.zeros((1, 3, 62, 62), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"max_pool2d: kernel \(2, 2\).*larger than the padded input \(1, 1\)"):
        our_vgg16(Tensor(np.zeros((1, 3, 31, 31), dtype=np.float32)))


@pytest.mark.parametrize("name, size", [("alexnet", 224), ("vgg16", 224), ("alexnet", 100)])
def test_summary_shapes_and_macs_match_pytorch(name: str, size: int, request: pytest.FixtureRequest) -> None:
    """Every layer's output shape from PyTorch's forward hooks (on the meta device: shapes only), and the MACs
    of each conv/linear output element from torch's weight shape: weight.numel() / out_channels."""
    torch = pytest.importorskip("torch")
    model = request.getfixturevalue(f"our_{name}")
    reference = {"alexnet": torch_alexnet, "vgg16": torch_vgg16}[name]()
    expected = []

    def hook(module, args, out) -> None:
        per_output = module.weight[0].numel() if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)) else 0
        expected.append((tuple(out.shape), out.numel() * per_output))

    for m in reference.modules():
        if not list(m.children()):
            m.register_forward_hook(hook)
    reference(torch.empty(1, 3, size, size, device="meta"))
    s = summary(model, (3, size, size))
    assert [(r.output_shape, r.macs) for r in s.rows] == expected
    assert [r.name for r in s.rows] == [n for n, m in reference.named_modules() if not list(m.children())]
    assert s.total_params == sum(r.params for r in s.rows) == count_parameters(model)


def test_published_totals(our_alexnet: nn.Module, our_vgg16: nn.Module) -> None:
    # torchvision's model cards list 0.71 and 15.47 GFLOPS (weight multiply-adds) at 224x224
    assert round(summary(our_alexnet, (3, 224, 224)).total_macs / 1e9, 2) == 0.71
    vgg = summary(our_vgg16, (3, 224, 224))
    assert round(vgg.total_macs / 1e9, 2) == 15.47
    assert "Total mult-adds: 15,470,264,320 (15.47 G)" in str(vgg).splitlines()


# ---- AdaptiveAvgPool2d ----------------------------------------------------------------------------------

def test_adaptive_avg_pool_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    for (h, w), out in itertools.product([(7, 10), (6, 6), (1, 1), (13, 5)], [(3, 4), 6, (1, 1), (7, 7), (2, 13)]):
        x = randn(2, 3, h, w, seed=h * w)
        expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), out).numpy()
        np.testing.assert_allclose(nn.AdaptiveAvgPool2d(out)(Tensor(x)).data, expected, rtol=1e-12, atol=1e-15)
        x32 = x.astype(np.float32)
        got = nn.AdaptiveAvgPool2d(out)(Tensor(x32)).data
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool_gradient() -> None:
    torch = pytest.importorskip("torch")
    for out in [(3, 4), (14, 3), 7]:
        x, g = randn(2, 3, 7, 10, seed=1), randn(2, 3, *np.broadcast_to(out, 2), seed=2)
        gradcheck(lambda t, out=out: adaptive_avg_pool2d(t, out), [Tensor(x, requires_grad=True)])
        ours = Tensor(x, requires_grad=True)
        adaptive_avg_pool2d(ours, out).backward(g)
        theirs = torch.from_numpy(x).requires_grad_()
        torch.nn.functional.adaptive_avg_pool2d(theirs, out).backward(torch.from_numpy(g))
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_adaptive_avg_pool_identity_and_errors() -> None:
    x = Tensor(randn(1, 2, 6, 6, seed=3))
    assert nn.AdaptiveAvgPool2d(6)(x) is x  # one element per window: nothing to compute
    assert repr(nn.AdaptiveAvgPool2d((6, 7))) == "AdaptiveAvgPool2d(output_size=(6, 7))"
    for bad in [0, (3, 0), (2, 2, 2), 2.5, True]:
        with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be a positive int"):
            nn.AdaptiveAvgPool2d(bad)
    with pytest.raises(ValueError, match=r"a floating-point 3-D or 4-D input \(\(N,\) C, H, W\), got shape \(6, 6\)"):
        adaptive_avg_pool2d(Tensor(randn(6, 6, seed=4)), 3)
    with pytest.raises(ValueError, match=r"dtype int64"):
        adaptive_avg_pool2d(Tensor(np.ones((1, 1, 4, 4), dtype=np.int64)), 2)
