"""Adversarial convolution cases against PyTorch: random geometries (stride, padding 'same'/'valid'/ints,
dilation, groups, empty batches, 1x1 images) with NaN/inf in the input, conv_transpose2d with every legal
output_padding (including output_padding >= stride, legal below the dilation), double backward, and
named edge shapes. Every expected number comes from PyTorch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad, nn

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SETTINGS = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def both(*arrays):
    return ([Tensor(a.copy(), requires_grad=True) for a in arrays],
            [torch.tensor(a.copy(), requires_grad=True) for a in arrays])


def assert_close(ours, theirs, rtol=1e-10, atol=1e-10):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["ints", "same", "valid"]))
    if padding == "same":
        stride = (1, 1)
    else:
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        if padding == "ints":
            padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    pad_hw = (0, 0) if isinstance(padding, str) else padding
    h = draw(st.integers(max(1, dil[0] * (kh - 1) + 1 - 2 * pad_hw[0]), 7))
    w = draw(st.integers(max(1, dil[1] * (kw - 1) + 1 - 2 * pad_hw[1]), 7))
    n = draw(st.integers(0, 2))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, cin, h, w))
    if x.size and draw(st.booleans()):
        x.flat[rng.integers(0, x.size)] = draw(st.sampled_from([np.inf, -np.inf, np.nan, 1e300, -0.0]))
    weight = rng.normal(size=(cout, cin // groups, kh, kw))
    bias = rng.normal(size=cout) if draw(st.booleans()) else None
    return x, weight, bias, dict(stride=stride, padding=padding, dilation=dil, groups=groups), seed


@SETTINGS
@given(conv_case())
def test_conv2d_random_geometry_and_special_values_match_pytorch(case) -> None:
    x, w, b, kwargs, seed = case
    arrays = [x, w] + ([b] if b is not None else [])
    (ox, ow, *ob), (tx, tw, *tb) = both(*arrays)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ty = TF.conv2d(tx, tw, tb[0] if tb else None, **kwargs)
        oy = F.conv2d(ox, ow, ob[0] if ob else None, **kwargs)
        g = np.random.default_rng(seed + 1).normal(size=tuple(ty.shape))
        ty.backward(torch.tensor(g))
        oy.backward(Tensor(g))
    assert_close(oy.data, ty)
    for o, t in zip([ox, ow, *ob], [tx, tw, *tb]):
        assert_close(o.grad.data, t.grad)


@st.composite
def transpose_case(draw):
    groups = draw(st.sampled_from([1, 1, 2]))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    out = [(i - 1) * s - 2 * p + d * (k - 1) + op + 1
           for i, s, p, d, k, op in zip((h, w), stride, padding, dilation, kernel, output_padding)]
    if min(out) < 1:
        padding = (0, 0)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return (rng.normal(size=(2, cin, h, w)), rng.normal(size=(cin, cout // groups, *kernel)), rng.normal(size=cout),
            dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups))


@SETTINGS
@given(transpose_case())
def test_conv_transpose2d_every_legal_output_padding_matches_pytorch(case) -> None:
    """output_padding >= stride is legal below the dilation: it raised a reshape error in backward."""
    x, w, b, kwargs = case
    (ox, ow, ob), (tx, tw, tb) = both(x, w, b)
    ty = TF.conv_transpose2d(tx, tw, tb, **kwargs)
    oy = F.conv_transpose2d(ox, ow, ob, **kwargs)
    g = np.random.default_rng(0).normal(size=tuple(ty.shape))
    ty.backward(torch.tensor(g))
    oy.backward(Tensor(g))
    assert_close(oy.data, ty)
    for o, t in ((ox, tx), (ow, tw), (ob, tb)):
        assert_close(o.grad.data, t.grad)


TRANSPOSE_REGRESSIONS = [
    # output_padding >= stride, < dilation: the crash the random search found
    ((2, 3, 2, 2), (3, 1, 2, 2), dict(stride=1, padding=(1, 0), output_padding=(0, 1), dilation=(1, 2))),
    ((2, 1, 1, 3), (1, 1, 2, 1), dict(stride=(1, 2), padding=(0, 1), output_padding=(1, 1), dilation=(2, 1))),
    ((1, 2, 4, 3), (2, 1, 2, 2), dict(stride=1, padding=(0, 2), output_padding=1, dilation=2)),
    ((1, 1, 3, 3), (1, 1, 3, 3), dict(stride=1, padding=0, output_padding=2, dilation=3)),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", TRANSPOSE_REGRESSIONS)
def test_conv_transpose2d_output_padding_beyond_the_stride(x_shape, w_shape, kwargs) -> None:
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    (ox, ow), (tx, tw) = both(x, w)
    ty, oy = TF.conv_transpose2d(tx, tw, **kwargs), F.conv_transpose2d(ox, ow, **kwargs)
    (ty * ty).sum().backward()
    (oy * oy).sum().backward()
    assert_close(oy.data, ty)
    assert_close(ox.grad.data, tx.grad)
    assert_close(ow.grad.data, tw.grad)


def test_conv_transpose2d_output_padding_beyond_the_stride_has_double_backward() -> None:
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=(1, 1, 3, 3)), rng.normal(size=(1, 1, 2, 2))
    kwargs = dict(stride=1, padding=1, output_padding=1, dilation=2)
    (ox, ow), (tx, tw) = both(x, w)
    (tgx,) = torch.autograd.grad((TF.conv_transpose2d(tx, tw, **kwargs) ** 2).sum(), tx, create_graph=True)
    (tgw,) = torch.autograd.grad((tgx ** 2).sum(), tw)
    (ogx,) = grad((F.conv_transpose2d(ox, ow, **kwargs) ** 2).sum(), [ox], create_graph=True)
    (ogw,) = grad((ogx ** 2).sum(), [ow])
    assert_close(ogx.data, tgx)
    assert_close(ogw.data, tgw)


CONV_SHAPES = {
    # name: (x shape, w shape, kwargs)
    "1x1-image-1x1-kernel": ((3, 2, 1, 1), (4, 2, 1, 1), {}),
    "kernel-equals-input": ((2, 3, 5, 4), (2, 3, 5, 4), {}),
    "stride-larger-than-input": ((1, 1, 3, 3), (1, 1, 2, 2), dict(stride=5)),
    "stride-larger-than-kernel": ((1, 2, 9, 9), (3, 2, 2, 2), dict(stride=(4, 3))),
    "padding-larger-than-kernel": ((1, 1, 2, 2), (1, 1, 1, 1), dict(padding=3)),
    "same-even-kernel": ((1, 2, 5, 6), (2, 2, 4, 2), dict(padding="same")),
    "same-even-kernel-dilated": ((1, 2, 7, 6), (2, 2, 2, 4), dict(padding="same", dilation=(3, 2))),
    "valid": ((1, 2, 5, 6), (2, 2, 3, 3), dict(padding="valid")),
    "depthwise": ((2, 4, 5, 5), (4, 1, 3, 3), dict(groups=4, padding=1)),
    "depthwise-multiplier": ((2, 3, 5, 5), (6, 1, 3, 3), dict(groups=3)),
    "dilation-spans-input": ((1, 1, 7, 7), (1, 1, 3, 3), dict(dilation=3)),
    "one-row": ((1, 1, 1, 9), (2, 1, 1, 3), dict(stride=(1, 2))),
    "empty-batch": ((0, 3, 5, 5), (2, 3, 3, 3), dict(padding=1)),
    "wide-channels": ((1, 64, 3, 3), (2, 64, 3, 3), dict(padding=1)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(CONV_SHAPES))
def test_conv2d_edge_shapes_match_pytorch(name: str, dtype) -> None:
    x_shape, w_shape, kwargs = CONV_SHAPES[name]
    rng = np.random.default_rng(len(name))
    x, w, b = (rng.normal(size=s).astype(dtype) for s in (x_shape, w_shape, (w_shape[0],)))
    (ox, ow, ob), (tx, tw, tb) = both(x, w, b)
    ty, oy = TF.conv2d(tx, tw, tb, **kwargs), F.conv2d(ox, ow, ob, **kwargs)
    g = rng.normal(size=tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(g))
    oy.backward(Tensor(g))
    tol = 1e-10 if dtype == np.float64 else 2e-4
    assert oy.dtype == dtype
    assert_close(oy.data, ty, tol, tol)
    for o, t in ((ox, tx), (ow, tw), (ob, tb)):
        assert o.grad.dtype == dtype
        assert_close(o.grad.data, t.grad, tol, tol)


def test_conv2d_module_double_backward_matches_pytorch() -> None:
    """Gradient penalty through a conv layer: d/dw of |d loss / d x|^2."""
    rng = np.random.default_rng(5)
    x, w = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3))
    (ox, ow), (tx, tw) = both(x, w)
    (tgx,) = torch.autograd.grad(torch.tanh(TF.conv2d(tx, tw, padding=1, stride=2)).sum(), tx, create_graph=True)
    (tgw,) = torch.autograd.grad((tgx ** 2).sum(), tw)
    (ogx,) = grad(F.conv2d(ox, ow, padding=1, stride=2).tanh().sum(), [ox], create_graph=True)
    (ogw,) = grad((ogx ** 2).sum(), [ow])
    assert_close(ogx.data, tgx)
    assert_close(ogw.data, tgw)


@pytest.mark.parametrize("layer", ["Conv2d", "ConvTranspose2d"])
def test_conv_layers_refuse_a_float64_batch_like_pytorch(layer: str) -> None:
    ours = getattr(nn, layer)(2, 3, 3)
    theirs = getattr(torch.nn, layer)(2, 3, 3)
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(RuntimeError):
        theirs(torch.tensor(x))
    with pytest.raises(TypeError, match="float64.*float32"):
        ours(Tensor(x))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kwargs", [{}, dict(dilation=(2, 1)), dict(padding=1), dict(padding="same"),
                                    dict(dilation=2, padding=1), dict(padding=(0, 2)), dict(groups=2)],
                         ids=["plain", "dilated", "padded", "same", "dilated-padded", "wide-padding", "groups"])
def test_one_non_finite_pixel_spoils_only_the_weights_that_see_it(kwargs, value) -> None:
    """The stride-1 kernels lay columns out with junk columns between rows; an inf/NaN pixel in a junk
    column made NaN * 0 in the weight gradient, so weights that never see the pixel got NaN."""
    w_shape = (2, 1 if "groups" in kwargs else 2, 2, 3)
    for position in [(0, 0), (0, 4), (3, 0), (3, 4), (1, 2)]:
        x = np.ones((2, 2, 4, 5))
        x[1, 0][position] = value
        (ox, ow), (tx, tw) = both(x, np.ones(w_shape))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            F.conv2d(ox, ow, **kwargs).sum().backward()
            TF.conv2d(tx, tw, **kwargs).sum().backward()
        assert_close(ow.grad.data, tw.grad)
        assert_close(ox.grad.data, tx.grad)


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize("op, kwargs", [("conv2d", {}), ("conv2d", dict(padding=1)), ("conv2d", dict(dilation=2)),
                                        ("conv2d", dict(groups=2)), ("conv_transpose2d", {}),
                                        ("conv_transpose2d", dict(stride=2, output_padding=1)),
                                        ("conv_transpose2d", dict(padding=1, dilation=2))],
                         ids=["conv", "conv-padded", "conv-dilated", "conv-groups", "transpose", "transpose-strided",
                              "transpose-dilated"])
def test_one_non_finite_weight_spoils_only_what_it_touches(op: str, kwargs, value) -> None:
    """The flat-shift input gradient (conv_transpose2d's forward) multiplied the weights by zero junk
    columns: an inf/NaN weight spread NaN over the whole input gradient (or transposed output)."""
    rng = np.random.default_rng(6)
    for corner in [(0, 0), (1, 2)]:
        x = rng.normal(size=(2, 2, 4, 5))
        w = rng.normal(size=(2, 1 if "groups" in kwargs else 2, 2, 3))
        w[1, 0][corner] = value
        (ox, ow), (tx, tw) = both(x, w)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            oy, ty = getattr(F, op)(ox, ow, **kwargs), getattr(TF, op)(tx, tw, **kwargs)
            (oy * oy).sum().backward()
            (ty * ty).sum().backward()
        assert_close(oy.data, ty)
        assert_close(ox.grad.data, tx.grad)
        assert_close(ow.grad.data, tw.grad)
