"""The Tensor API and the factories against PyTorch: what a PyTorch script calls, with PyTorch's results.

Differentiable ops are compared in float64 on the forward value, the gradient for a random upstream
gradient and the second derivatives (helpers.assert_matches_torch); every op also has a gradcheck case in
tools/opsuite.py. The rest is compared on values, shapes and dtypes, and on the class of the exception
for misuse: each error case must raise in PyTorch too, and ours must be an instance of PyTorch's class
(our errors may also subclass ValueError, the class numpy-minded callers catch).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import helpers
import numpy as np
import pytest
from test_ops_torch import one_torch_thread  # noqa: F401  (autouse: one torch thread for tiny tensors)

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, nn

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(15)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def distinct(*shape: int) -> np.ndarray:
    """No ties (spaced 0.1): max/min/clamp stay differentiable at every element."""
    n = int(np.prod(shape))
    return ((RNG.permutation(n) - n / 2) * 0.1 + 0.03).reshape(shape)


def both(lib: Any) -> Any:
    """`lib.where`, `lib.cat`, ... for lib = tg or torch: the same spelling in both."""
    return lib


COND = RNG.random((3, 4)) > 0.5
INDEX = np.array([[0, 2, 2, 1], [1, 1, 0, 0]])


def cond(lib: Any) -> Any:
    return lib.tensor(COND)


def index(lib: Any, a: np.ndarray = INDEX) -> Any:
    return lib.tensor(a)


# ---- differentiable ops: value, gradient, second derivatives -----------------------------------------------
# id -> (f(lib, *inputs) written once for both frameworks, input arrays)
DIFFERENTIABLE: dict[str, tuple[Callable[..., Any], list[np.ndarray]]] = {
    "sigmoid": (lambda lib, x: x.sigmoid(), [randn(3, 4)]),
    "sigmoid-extreme": (lambda lib, x: (x * 60).sigmoid(), [randn(3, 4)]),
    "torch.sigmoid": (lambda lib, x: lib.sigmoid(x), [randn(3, 4)]),
    "tanh-0d": (lambda lib, x: x.tanh(), [np.array(-0.4)]),
    # 0-d results that ops save as their output (numpy returns scalars there): second derivatives
    "exp-0d": (lambda lib, x: x.exp(), [np.array(0.7)]),
    "div-0d": (lambda lib, a, b: a / b, [np.array(0.7), np.array(1.3)]),
    "pow-0d": (lambda lib, a, b: a ** b, [np.array(0.7), np.array(1.3)]),
    "sum-then-exp": (lambda lib, x: x.sum().exp(), [randn(3)]),
    "sigmoid-0d": (lambda lib, x: x.sigmoid(), [np.array(0.7)]),
    "tanh": (lambda lib, x: x.tanh(), [randn(3, 4)]),
    "tanh-extreme": (lambda lib, x: (x * 40).tanh(), [randn(3, 4)]),
    "abs": (lambda lib, x: x.abs(), [randn(3, 4)]),
    "abs-builtin": (lambda lib, x: abs(x), [randn(3, 4)]),
    "sqrt": (lambda lib, x: x.sqrt(), [RNG.uniform(0.3, 2, (3, 4))]),
    "rsqrt": (lambda lib, x: x.rsqrt(), [RNG.uniform(0.3, 2, (3, 4))]),
    "square": (lambda lib, x: x.square(), [randn(3, 4)]),
    "clamp": (lambda lib, x: x.clamp(-0.25, 0.35), [distinct(3, 4)]),
    "clamp-min-keyword": (lambda lib, x: x.clamp(min=0.05), [distinct(3, 4)]),
    "clamp-max-keyword": (lambda lib, x: lib.clamp(x, max=-0.05), [distinct(3, 4)]),
    "clip": (lambda lib, x: x.clip(-0.25, 0.35), [distinct(3, 4)]),
    "clamp-min-above-max": (lambda lib, x: x.clamp(0.5, -0.5), [distinct(3, 4)]),
    "clamp-tensor-bounds": (lambda lib, x, lo, hi: x.clamp(lo, hi), [randn(3, 4), -RNG.uniform(0.3, 1, 4),
                                                                    RNG.uniform(0.3, 1, (3, 1))]),
    "where": (lambda lib, a, b: lib.where(cond(lib), a, b), [randn(3, 4), randn(3, 4)]),
    "where-broadcast": (lambda lib, a, b: lib.where(cond(lib), a, b), [randn(4), randn(3, 1)]),
    "where-scalar-other": (lambda lib, a: lib.where(cond(lib), a, 0.5), [randn(3, 4)]),
    "where-scalar-input": (lambda lib, b: lib.where(cond(lib), -1.0, b), [randn(3, 4)]),
    "Tensor.where": (lambda lib, a, b: a.where(cond(lib), b), [randn(3, 4), randn(4)]),
    "masked_fill": (lambda lib, x: x.masked_fill(cond(lib), -2.0), [randn(3, 4)]),
    "maximum": (lambda lib, a, b: lib.maximum(a, b), [randn(3, 4), randn(4)]),
    "minimum": (lambda lib, a, b: a.minimum(b), [randn(3, 4), randn(3, 1)]),
    "max-of-two-tensors": (lambda lib, a, b: lib.max(a, b), [randn(3, 4), randn(3, 4)]),
    # reductions with dim / keepdim
    "sum-dim": (lambda lib, x: x.sum(dim=1), [randn(2, 3, 4)]),
    "sum-dims-keepdim": (lambda lib, x: x.sum((0, 2), keepdim=True), [randn(2, 3, 4)]),
    "torch.sum": (lambda lib, x: lib.sum(x, 1, True), [randn(2, 3, 4)]),
    "mean-dim": (lambda lib, x: x.mean(dim=-1), [randn(2, 3, 4)]),
    "mean-dims-keepdim": (lambda lib, x: x.mean((0, 1), keepdim=True), [randn(2, 3, 4)]),
    "max-all": (lambda lib, x: x.max(), [distinct(3, 4)]),
    "max-all-ties": (lambda lib, x: x.max(), [np.array([[1.0, 3.0, 3.0], [0.0, 3.0, 2.0]])]),
    "max-dim-values": (lambda lib, x: x.max(1).values, [distinct(2, 3, 4)]),
    "max-dim-keepdim": (lambda lib, x: x.max(dim=-1, keepdim=True)[0], [distinct(2, 3, 4)]),
    "max-dim-ties": (lambda lib, x: x.max(dim=1).values, [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]])]),
    "torch.max-dim": (lambda lib, x: lib.max(x, 0)[0], [distinct(3, 4)]),
    "min-all": (lambda lib, x: x.min(), [distinct(3, 4)]),
    "min-dim-values": (lambda lib, x: x.min(0).values, [distinct(3, 4)]),
    "min-dim-ties": (lambda lib, x: x.min(1)[0], [np.array([[1.0, 0.0, 0.0], [2.0, 2.0, 3.0]])]),
    "amax": (lambda lib, x: x.amax(), [distinct(2, 3, 4)]),
    "amax-dims": (lambda lib, x: x.amax((0, 2)), [distinct(2, 3, 4)]),
    "amax-ties": (lambda lib, x: x.amax(1, keepdim=True), [np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    "amin": (lambda lib, x: x.amin(-1), [distinct(2, 3, 4)]),
    "amin-ties": (lambda lib, x: lib.amin(x, 0), [np.array([[1.0, 0.0, 0.0], [1.0, 2.0, 0.0]])]),
    "var": (lambda lib, x: x.var(), [randn(3, 4)]),
    "var-dim": (lambda lib, x: x.var(1), [randn(3, 4)]),
    "var-unbiased-false": (lambda lib, x: x.var(0, unbiased=False, keepdim=True), [randn(3, 4)]),
    "var-positional-unbiased": (lambda lib, x: x.var(False), [randn(3, 4)]),
    "var-correction": (lambda lib, x: x.var(dim=(0, 2), correction=2), [randn(3, 4, 2)]),
    "var-correction-0": (lambda lib, x: lib.var(x, 1, correction=0), [randn(3, 4)]),
    "std": (lambda lib, x: x.std(), [randn(3, 4)]),
    "std-dim-keepdim": (lambda lib, x: x.std(dim=1, keepdim=True), [randn(3, 4)]),
    "std-unbiased-false": (lambda lib, x: lib.std(x, 0, unbiased=False), [randn(3, 4)]),
    "prod": (lambda lib, x: x.prod(), [randn(2, 3)]),
    "prod-dim": (lambda lib, x: x.prod(1), [randn(2, 3, 2)]),
    "prod-dim-keepdim": (lambda lib, x: lib.prod(x, -1, keepdim=True), [randn(2, 3, 2)]),
    "prod-one-zero": (lambda lib, x: x.prod(1), [np.array([[1.5, 0.0, -2.0], [0.5, 3.0, 2.0]])]),
    "prod-two-zeros": (lambda lib, x: x.prod(), [np.array([[1.5, 0.0, -2.0], [0.5, 0.0, 2.0]])]),
    "prod-zero-in-each-row": (lambda lib, x: x.prod(0), [np.array([[0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])]),
    "cumsum": (lambda lib, x: x.cumsum(1), [randn(3, 4)]),
    "torch.cumsum": (lambda lib, x: lib.cumsum(x, dim=0), [randn(3, 4)]),
    "flip": (lambda lib, x: x.flip(0, 2), [randn(2, 3, 4)]),
    "torch.flip": (lambda lib, x: lib.flip(x, [1]), [randn(2, 3)]),
    "sort": (lambda lib, x: x.sort().values, [distinct(3, 4)]),
    "sort-descending-dim0": (lambda lib, x: x.sort(0, descending=True)[0], [distinct(3, 4)]),
    "sort-ties": (lambda lib, x: x.sort(1).values * lib.arange(3), [np.array([[2.0, 1.0, 2.0], [0.5, 0.5, 0.5]])]),
    "topk": (lambda lib, x: x.topk(2).values, [distinct(3, 4)]),
    "topk-smallest-dim0": (lambda lib, x: lib.topk(x, 2, dim=0, largest=False)[0], [distinct(3, 4)]),
    "norm": (lambda lib, x: x.norm(), [randn(3, 4)]),
    "norm-dim-keepdim": (lambda lib, x: x.norm(dim=1, keepdim=True), [randn(3, 4)]),
    "norm-1": (lambda lib, x: x.norm(p=1), [randn(3, 4)]),
    "norm-3": (lambda lib, x: lib.norm(x, 3, 0), [randn(3, 4)]),
    "norm-inf": (lambda lib, x: x.norm(p=float("inf"), dim=1), [distinct(3, 4)]),
    "mm": (lambda lib, a, b: a.mm(b), [randn(3, 4), randn(4, 2)]),
    "torch.mm": (lambda lib, a, b: lib.mm(a, b), [randn(3, 4), randn(4, 2)]),
    "bmm": (lambda lib, a, b: a.bmm(b), [randn(2, 3, 4), randn(2, 4, 2)]),
    "add-alpha": (lambda lib, a, b: a.add(b, alpha=-0.5), [randn(3, 4), randn(4)]),
    "torch.add-scalar": (lambda lib, a: lib.add(a, 2.5), [randn(3, 4)]),
    "sub-alpha": (lambda lib, a, b: lib.sub(a, b, alpha=2), [randn(3, 4), randn(3, 1)]),
    "mul": (lambda lib, a, b: a.mul(b), [randn(3, 4), randn(4)]),
    "torch.mul": (lambda lib, a, b: lib.mul(a, b), [randn(3, 4), randn(3, 4)]),
    "div": (lambda lib, a, b: a.div(b), [randn(3, 4), RNG.uniform(0.5, 2, 4)]),
    "pow-method": (lambda lib, x: x.pow(2) + x.pow(3), [randn(3, 4)]),
    "torch.pow": (lambda lib, x: lib.pow(x, 0.5), [RNG.uniform(0.5, 2, (3, 4))]),
    "neg": (lambda lib, x: x.neg(), [randn(3, 4)]),
    "reciprocal": (lambda lib, x: x.reciprocal(), [RNG.uniform(0.5, 2, (3, 4))]),
    "nan_to_num-finite-gradient": (lambda lib, x: (x * 2).nan_to_num(posinf=9.0, neginf=-9.0),
                                   [np.array([[0.5, np.inf, 2.0], [-np.inf, 3.0, np.nan]])]),
    "contiguous-after-transpose": (lambda lib, x: x.t().contiguous().view(-1), [randn(3, 4)]),
    "logsumexp": (lambda lib, x: x.logsumexp(1), [randn(3, 4) * 50]),
    "logsumexp-keepdim": (lambda lib, x: lib.logsumexp(x, (0, 1), keepdim=True), [randn(3, 4)]),
    "softmax-dim": (lambda lib, x: x.softmax(dim=1), [randn(2, 3, 4)]),
    "softmax-positional": (lambda lib, x: x.softmax(0), [randn(3, 4)]),
    "torch.softmax": (lambda lib, x: lib.softmax(x, -1), [randn(3, 4) * 100]),
    "log_softmax-dim": (lambda lib, x: x.log_softmax(dim=-1), [randn(2, 3, 4)]),
    "torch.log_softmax": (lambda lib, x: lib.log_softmax(x, dim=0), [randn(3, 4)]),
    # shape and movement
    "view": (lambda lib, x: x.view(4, -1), [randn(2, 3, 4)]),
    "view-tuple": (lambda lib, x: x.view((6, 4)), [randn(2, 3, 4)]),
    "view_as": (lambda lib, x, y: x.view_as(y) * y, [randn(2, 6), randn(3, 4)]),
    "reshape_as": (lambda lib, x, y: x.reshape_as(y) + y, [randn(12), randn(3, 4)]),
    "flatten-default": (lambda lib, x: x.flatten(), [randn(2, 3, 4)]),
    "flatten-start": (lambda lib, x: x.flatten(1), [randn(2, 3, 4)]),
    "flatten-start-end": (lambda lib, x: x.flatten(0, 1), [randn(2, 3, 4, 2)]),
    "flatten-negative-end": (lambda lib, x: x.flatten(1, -2), [randn(2, 3, 4, 2)]),
    "flatten-0d": (lambda lib, x: x.sum().flatten(), [randn(2, 3)]),
    "torch.flatten": (lambda lib, x: lib.flatten(x, 1), [randn(2, 3, 4)]),
    "unflatten": (lambda lib, x: x.unflatten(1, (2, 2)), [randn(3, 4)]),
    "unsqueeze": (lambda lib, x: x.unsqueeze(1), [randn(3, 4)]),
    "unsqueeze-negative": (lambda lib, x: x.unsqueeze(-1), [randn(3, 4)]),
    "unsqueeze-0d": (lambda lib, x: x.sum().unsqueeze(0), [randn(3, 4)]),
    "torch.unsqueeze": (lambda lib, x: lib.unsqueeze(x, 0), [randn(3, 4)]),
    "squeeze": (lambda lib, x: x.squeeze(), [randn(1, 3, 1, 4)]),
    "squeeze-dim": (lambda lib, x: x.squeeze(2), [randn(1, 3, 1, 4)]),
    "squeeze-dim-not-1": (lambda lib, x: x.squeeze(1), [randn(1, 3, 1, 4)]),
    "squeeze-dims": (lambda lib, x: x.squeeze((0, 2)), [randn(1, 3, 1, 4)]),
    "expand": (lambda lib, x: x.expand(2, 3, 4), [randn(3, 1)]),
    "expand-minus-one": (lambda lib, x: x.expand(-1, 4), [randn(3, 1)]),
    "expand-new-and-minus-one": (lambda lib, x: x.expand(2, -1, -1), [randn(3, 4)]),
    "expand-tuple": (lambda lib, x: x.expand((2, 3, 4)), [randn(1, 4)]),
    "expand_as": (lambda lib, x, y: x.expand_as(y) * y, [randn(3, 1), randn(3, 4)]),
    "repeat": (lambda lib, x: x.repeat(2, 3), [randn(2, 3)]),
    "repeat-new-dims": (lambda lib, x: x.repeat(2, 1, 2), [randn(2, 3)]),
    "t": (lambda lib, x: x.t(), [randn(3, 4)]),
    "t-1d": (lambda lib, x: x.t(), [randn(3)]),
    "transpose": (lambda lib, x: lib.transpose(x, 0, 2), [randn(2, 3, 4)]),
    "transpose-same-dim": (lambda lib, x: x.transpose(1, -2) * 2, [randn(2, 3, 4)]),
    "narrow": (lambda lib, x: x.narrow(1, 1, 2), [randn(3, 4)]),
    "narrow-negative-start": (lambda lib, x: x.narrow(0, -2, 2), [randn(3, 4)]),
    "index_select": (lambda lib, x: x.index_select(1, index(lib, np.array([2, 0, 2]))), [randn(2, 3)]),
    "gather": (lambda lib, x: x.gather(1, index(lib)), [randn(2, 3)]),
    "gather-dim0": (lambda lib, x: lib.gather(x, 0, index(lib, INDEX[:, :3])), [randn(3, 3)]),
    "gather-smaller-index": (lambda lib, x: x.gather(1, index(lib, INDEX[:1, :2])), [randn(2, 3)]),
    "clone": (lambda lib, x: x.clone() * x, [randn(3, 4)]),
    "to-float64": (lambda lib, x: x.to(lib.float64) * 2, [randn(3, 4)]),
    "to-cpu-dtype": (lambda lib, x: x.to("cpu", lib.float64), [randn(3, 4)]),
    "type_as": (lambda lib, x, y: x.type_as(y) * y, [randn(3, 4), randn(3, 4)]),
    # joining and splitting
    "cat": (lambda lib, a, b: lib.cat([a, b]), [randn(2, 3), randn(4, 3)]),
    "cat-dim1-three": (lambda lib, a, b, c: lib.cat((a, b, c), dim=1), [randn(2, 1), randn(2, 3), randn(2, 2)]),
    "cat-negative-dim": (lambda lib, a, b: lib.cat([a, b], -1), [randn(2, 3, 1), randn(2, 3, 2)]),
    "cat-one-tensor": (lambda lib, a: lib.cat([a]), [randn(2, 3)]),
    "cat-same-tensor-twice": (lambda lib, a: lib.cat([a, a * 2], 1), [randn(2, 3)]),
    "concat": (lambda lib, a, b: lib.concat([a, b]), [randn(2, 3), randn(1, 3)]),
    "stack": (lambda lib, a, b: lib.stack([a, b]), [randn(2, 3), randn(2, 3)]),
    "stack-dim1": (lambda lib, a, b, c: lib.stack((a, b, c), 1), [randn(2, 3), randn(2, 3), randn(2, 3)]),
    "stack-last-dim": (lambda lib, a, b: lib.stack([a, b], dim=-1), [randn(2, 3), randn(2, 3)]),
    "split-size": (lambda lib, x: lib.cat([p * (i + 1) for i, p in enumerate(x.split(2, dim=1))], 1),
                   [randn(2, 5)]),
    "split-sections": (lambda lib, x: x.split([1, 3], 0)[1], [randn(4, 3)]),
    "torch.split": (lambda lib, x: lib.split(x, 3)[1], [randn(5, 2)]),
    "chunk": (lambda lib, x: lib.cat(list(x.chunk(3, -1))[::-1], -1), [randn(2, 7)]),
    "chunk-fewer": (lambda lib, x: x.chunk(4, 1)[-1], [randn(2, 6)]),
    "torch.chunk": (lambda lib, x: lib.chunk(x, 2)[0], [randn(5, 2)]),
    "unbind": (lambda lib, x: x.unbind(1)[2] * x.unbind()[0], [randn(3, 3)]),
}


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_differentiable_op_matches_torch(name: str) -> None:
    f, arrays = DIFFERENTIABLE[name]
    helpers.assert_matches_torch(lambda *xs: f(tg, *xs), lambda *xs: f(torch, *xs), arrays, tol=1e-10)


def test_norm_and_std_of_zeros_have_pytorch_zero_gradients() -> None:
    """sqrt at 0 would give 1/0 times a zero gradient, NaN: PyTorch (and we) give 0 there. (Its second
    derivative at that point is NaN in PyTorch, so only the first is compared.)"""
    for f in (lambda x: x.norm(dim=1), lambda x: x.std(1), lambda x: x.norm()):
        a = np.array([[0.0, 0.0], [3.0, -4.0]]) * np.array([[1.0], [0.0]])
        ours, theirs = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
        f(ours).sum().backward()
        f(theirs).sum().backward()
        np.testing.assert_array_equal(ours.grad.data, theirs.grad.numpy())


def test_split_returns_the_pieces_torch_returns() -> None:
    for args in [(2,), (2, 1), ([1, 4],), ([2, 3], 1), (10,)]:
        x = randn(5, 5)
        ours, theirs = Tensor(x).split(*args), torch.tensor(x).split(*args)
        assert isinstance(ours, tuple) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            np.testing.assert_array_equal(o.data, t.numpy())
    for chunks, n in [(3, 7), (4, 6), (5, 2), (1, 3), (6, 6)]:
        x = randn(n, 2)
        ours, theirs = Tensor(x).chunk(chunks), torch.tensor(x).chunk(chunks)
        assert [o.shape for o in ours] == [tuple(t.shape) for t in theirs]


# ---- float32 stays float32 through the new ops ------------------------------------------------------------
@pytest.mark.parametrize("name", [n for n in DIFFERENTIABLE if n not in ("to-float64", "to-cpu-dtype", "type_as")])
def test_float32_in_float32_out_and_grads(name: str) -> None:
    f, arrays = DIFFERENTIABLE[name]
    xs = [Tensor(a.astype(np.float32), requires_grad=True) for a in arrays]
    out = f(tg, *xs)
    theirs = f(torch, *(torch.tensor(a.astype(np.float32)) for a in arrays))
    assert out.dtype == np.float32 and theirs.dtype == torch.float32
    grads = tg.grad(out, xs, grad_outputs=np.ones(out.shape, np.float32), allow_unused=True)
    assert all(g is None or g.dtype == np.float32 for g in grads)


# ---- results that are not differentiated: values, shapes, dtypes -------------------------------------------
def same(ours: Any, theirs: Any) -> None:
    """Equal values, shape and dtype (a Tensor against a torch tensor), or equal Python values."""
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, Tensor), f"expected a Tensor, got {type(ours).__name__}"
        assert ours.shape == tuple(theirs.shape)
        assert ours.dtype == np.dtype(str(theirs.dtype).removeprefix("torch.")), (ours.dtype, theirs.dtype)
        if ours.dtype.kind == "f":  # the same formula; exp and friends may round an ulp apart (SLEEF vs libm)
            np.testing.assert_array_max_ulp(ours.data, theirs.numpy(), maxulp=2)
        else:
            np.testing.assert_array_equal(ours.data, theirs.numpy())
    elif isinstance(theirs, (tuple, list)):
        # a Size, or a named tuple such as torch.return_types.sort: the same name and fields
        assert type(ours) is type(theirs) or isinstance(theirs, torch.Size) or (
            type(ours).__name__ == type(theirs).__name__ and ours._fields == ("values", "indices")), (ours, theirs)
        assert len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            same(o, t)
    else:
        assert type(ours) is type(theirs) and ours == theirs, (ours, theirs)


X = np.array([[1.5, -2.0, np.nan, 3.0], [0.0, 3.0, -1.0, 3.0], [2.0, 2.0, 2.0, -4.0]])
I = np.array([[3, -1, 0], [7, 7, 2]])  # noqa: E741

# id -> f(lib, x) on the data `X` (float32) or `I` (int64)
VALUES: dict[str, tuple[Callable[[Any, Any], Any], np.ndarray]] = {
    "eq-scalar": (lambda lib, x: x.eq(3.0), X),
    "eq-tensor": (lambda lib, x: x.eq(x[0]), X),
    "ne-nan": (lambda lib, x: x.ne(x), X),
    "lt": (lambda lib, x: x.lt(2.0), X),
    "le": (lambda lib, x: x.le(x.flip(0) if lib is torch else lib.tensor(X[::-1].astype(np.float32))), X),
    "gt-int-with-float": (lambda lib, x: x.gt(0.5), I),
    "ge": (lambda lib, x: x.ge(x[:, :1]), I),
    "torch.eq": (lambda lib, x: lib.eq(x, 2.0), X),
    "argmax": (lambda lib, x: x.argmax(), X),
    "argmax-dim": (lambda lib, x: x.argmax(dim=1), X),
    "argmax-keepdim": (lambda lib, x: x.argmax(0, keepdim=True), X),
    "argmax-all-keepdim": (lambda lib, x: x.argmax(keepdim=True), X),
    "argmin-dim": (lambda lib, x: x.argmin(1), I),
    "torch.argmax": (lambda lib, x: lib.argmax(x, 1), I),
    "max-dim-indices": (lambda lib, x: x.max(1).indices, X),
    "max-dim-nan-value": (lambda lib, x: x.max(1).values, X),
    "min-dim-indices": (lambda lib, x: x.min(dim=0)[1], X),
    "max-int": (lambda lib, x: x.max(), I),
    "max-int-dim": (lambda lib, x: lib.max(x, 1).values, I),
    "min-int": (lambda lib, x: x.amin(1), I),
    "maximum-int": (lambda lib, x: x.maximum(x.flip(1) if lib is torch else lib.tensor(I[:, ::-1].copy())), I),
    "all": (lambda lib, x: x.gt(-5).all(), X),
    "any-dim": (lambda lib, x: x.eq(3.0).any(1), X),
    "all-dim-keepdim": (lambda lib, x: x.ne(2.0).all(dim=0, keepdim=True), X),
    "sum-int": (lambda lib, x: x.sum(), I),
    "sum-int-dim": (lambda lib, x: x.sum(1), I),
    "sum-bool": (lambda lib, x: x.gt(0).sum(), I),
    "sum-bool-dim": (lambda lib, x: x.eq(3.0).sum(dim=0), X),
    "sum-dtype": (lambda lib, x: x.sum(dtype=lib.float64), I),
    "prod-int": (lambda lib, x: x.prod(1), I),
    "prod-bool": (lambda lib, x: x.gt(0).prod(), I),
    "mean-dtype": (lambda lib, x: x.mean(dtype=lib.float64), I),
    "sort-nan-and-ties": (lambda lib, x: x.sort(1), X),
    "sort-descending-nan-and-ties": (lambda lib, x: x.sort(dim=1, descending=True), X),
    "sort-int-dim0": (lambda lib, x: x.sort(0), I),
    "argsort": (lambda lib, x: x.argsort(1), X),
    "argsort-descending": (lambda lib, x: lib.argsort(x, dim=0, descending=True), I),
    "topk-indices": (lambda lib, x: x.topk(2, 1).indices, np.array([[0.3, 2.0, -1.0, 0.5], [5.0, 1.0, 4.0, 2.0]])),
    "topk-smallest": (lambda lib, x: x.topk(1, largest=False), I),
    "top5-accuracy-idiom": (lambda lib, x: x.topk(2, 1).indices.eq(lib.tensor([[1], [0]])).any(1).sum(),
                            np.array([[0.3, 2.0, -1.0, 0.5], [5.0, 1.0, 4.0, 2.0]])),
    "cumsum-int": (lambda lib, x: x.cumsum(1), I),
    "cumsum-bool": (lambda lib, x: x.gt(0).cumsum(0), I),
    "flip-int": (lambda lib, x: x.flip(1), I),
    "norm-int-input-error-free": (lambda lib, x: x.float().norm(), I),
    "add_": (lambda lib, x: x.clone().add_(lib.ones(4), alpha=2), X),
    "sub_": (lambda lib, x: x.clone().sub_(2), I),
    "mul_": (lambda lib, x: x.clone().mul_(lib.tensor([1, 2, 3])), I),
    "div_": (lambda lib, x: x.clone().div_(4), X),
    "clamp_": (lambda lib, x: x.clone().clamp_(-1, 2), X),
    "masked_fill_": (lambda lib, x: x.clone().masked_fill_(x > 2, 0.0), X),
    "logical_not": (lambda lib, x: x.gt(1).logical_not(), X),
    "logical_and": (lambda lib, x: x.gt(1).logical_and(x.lt(3)), X),
    "torch.logical_or": (lambda lib, x: lib.logical_or(x.gt(2), x), X),
    "logical_xor": (lambda lib, x: x.logical_xor(x.flip(0) if lib is torch else lib.tensor(I[::-1].copy())), I),
    "invert-mask": (lambda lib, x: ~x.gt(1), X),
    "invert-int": (lambda lib, x: ~x, I),
    "and-masks": (lambda lib, x: x.gt(0) & x.lt(3), X),
    "or-masks": (lambda lib, x: x.gt(2) | x.lt(-1), X),
    "xor-masks": (lambda lib, x: x.gt(0) ^ x.ne(2), X),
    "and-python-bool": (lambda lib, x: True & x.gt(0), X),
    "isnan": (lambda lib, x: x.isnan(), X),
    "torch.isnan": (lambda lib, x: lib.isnan(x).any(), X),
    "isinf": (lambda lib, x: (x / 0).isinf(), X),
    "isfinite": (lambda lib, x: (x / 0).isfinite(), X),
    "nan_to_num": (lambda lib, x: (x / 0).nan_to_num(), X),
    "nan_to_num-values": (lambda lib, x: (x / 0).nan_to_num(nan=-1.0, posinf=5.0), X),
    "sign": (lambda lib, x: x.sign(), X),
    "sign-int": (lambda lib, x: x.sign(), I),
    "floor": (lambda lib, x: (x * 0.7).floor(), X),
    "ceil": (lambda lib, x: lib.ceil(x * 0.7), X),
    "trunc": (lambda lib, x: (x * -0.7).trunc(), X),
    "round-half-even": (lambda lib, x: (x / 2).round(), X),
    "round-decimals": (lambda lib, x: (x / 3).round(decimals=2), X),
    "div-floor": (lambda lib, x: x.div(2.5, rounding_mode="floor"), X),
    "div-trunc": (lambda lib, x: lib.div(x, -2.5, rounding_mode="trunc"), X),
    "div-floor-int": (lambda lib, x: x.div(2, rounding_mode="floor"), I),
    "div-trunc-int": (lambda lib, x: x.div(-2, rounding_mode="trunc"), I),
    "true-div-int": (lambda lib, x: x.div(2), I),
    "add-int-alpha": (lambda lib, x: x.add(x, alpha=3), I),
    "nonzero": (lambda lib, x: x.nonzero(), I),
    "nonzero-tuple": (lambda lib, x: x.nonzero(as_tuple=True), I),
    "where-one-argument": (lambda lib, x: lib.where(x > 2), X),
    "unique": (lambda lib, x: x.unique(), I),
    "unique-counts-inverse": (lambda lib, x: lib.unique(x, return_inverse=True, return_counts=True), I),
    "bincount": (lambda lib, x: x.abs().flatten().bincount(), I),
    "bincount-minlength": (lambda lib, x: x.abs().flatten().bincount(minlength=12), I),
    "scatter_": (lambda lib, x: lib.zeros(2, 4).scatter_(1, lib.tensor([[2], [0]]), 1.0), I),
    "scatter_-src": (lambda lib, x: lib.zeros(3, 3).scatter_(0, lib.tensor([[2, 1, 0]]), x.float()), I),
    "scatter_add_": (lambda lib, x: lib.zeros(2, 4, dtype=lib.long).scatter_add_(1, lib.tensor([[1, 1, 3]] * 2), x), I),
    "in": (lambda lib, x: (3.0 in x, 2.5 in x, x[0, 0] in x), X),
    "iterate": (lambda lib, x: [row.sum() for row in x], I),
    "format": (lambda lib, x: f"{x[0, 0]:.3f} {x.sum():>8.2f}", X),
    "contiguous": (lambda lib, x: (x.t().contiguous().is_contiguous(), x.contiguous().is_contiguous()), X),
    "accuracy-idiom": (lambda lib, x: x.argmax(1).eq(lib.tensor([3, 1, 0])).sum(), X),
    "accuracy-float-mean": (lambda lib, x: x.argmax(1).eq(lib.tensor([3, 1, 0])).float().mean(), X),
    "float": (lambda lib, x: x.float(), I),
    "double": (lambda lib, x: x.double(), I),
    "half": (lambda lib, x: x.half(), X),
    "long": (lambda lib, x: x.nan_to_num().long() if lib is torch else lib.tensor(np.nan_to_num(X)).long(), X),
    "int": (lambda lib, x: x.int(), I),
    "short": (lambda lib, x: x.short(), I),
    "byte": (lambda lib, x: x.abs().byte(), I),
    "bool": (lambda lib, x: x.bool(), I),
    "to-dtype": (lambda lib, x: x.to(lib.int32), I),
    "to-dtype-keyword": (lambda lib, x: x.to(dtype=lib.float64), I),
    "to-other-tensor": (lambda lib, x: x.to(lib.zeros(1, dtype=lib.float16)), I),
    "to-python-float": (lambda lib, x: x.to(float), I),
    "type_as-int": (lambda lib, x: lib.ones(2).type_as(x), I),
    "clamp-int": (lambda lib, x: x.clamp(0, 4), I),
    "clamp-int-float-bound": (lambda lib, x: x.clamp(min=0.5), I),
    "where-int-and-float": (lambda lib, x: lib.where(x > 0, x, 0.5), I),
    "where-int-int": (lambda lib, x: lib.where(x > 0, x, 0), I),
    "abs-int": (lambda lib, x: x.abs(), I),
    "sqrt-int": (lambda lib, x: x.abs().sqrt(), I),
    "sigmoid-int": (lambda lib, x: x.sigmoid(), I),
    "masked_fill-int": (lambda lib, x: x.masked_fill(x < 0, 0), I),
    "masked_fill-int-float-value": (lambda lib, x: x.masked_fill(x > 2, 2.7), I),
    "masked_fill-float-int-value": (lambda lib, x: x.masked_fill(x > 2, 7), X),
    "masked_fill-tensor-value": (lambda lib, x: x.masked_fill(x > 2, lib.tensor(2.7)), I),
    "cat-promotes": (lambda lib, x: lib.cat([x, lib.zeros(1, 3)]), I),
    "cat-int": (lambda lib, x: lib.cat([x, x], 1), I),
    "stack-int": (lambda lib, x: lib.stack([x, x], -1), I),
    "gather-int": (lambda lib, x: x.gather(1, lib.tensor([[2, 2], [0, 1]])), I),
    "size": (lambda lib, x: x.size(), X),
    "size-dim": (lambda lib, x: x.size(1), X),
    "size-negative-dim": (lambda lib, x: x.size(-1), X),
    "numel": (lambda lib, x: x.numel(), X),
    "dim": (lambda lib, x: x.dim(), X),
    "ndimension": (lambda lib, x: x.ndimension(), X),
    "nelement": (lambda lib, x: x.nelement(), X),
    "tolist": (lambda lib, x: x.tolist(), I),
    "tolist-0d": (lambda lib, x: x[0, 0].tolist(), I),
    "float()": (lambda lib, x: float(x[0, 0]), X),
    "int()": (lambda lib, x: int(x[0, 0]), X),
    "int()-negative": (lambda lib, x: int(x[0, 1]), X),
    "index()": (lambda lib, x: [10, 20, 30, 40][x[1, 2]], I),
    "range-of-tensor": (lambda lib, x: list(range(x[1, 2])), I),
    "is_floating_point": (lambda lib, x: x.is_floating_point(), I),
    "element_size": (lambda lib, x: x.element_size(), X),
    "new_zeros": (lambda lib, x: x.new_zeros(2, 3), I),
    "new_ones": (lambda lib, x: x.new_ones((2,)), X),
    "new_full": (lambda lib, x: x.new_full((2, 2), 7), X),
    "new_tensor": (lambda lib, x: x.new_tensor([1, 2]), X),
    "zero_": (lambda lib, x: x.clone().zero_(), X),
    "fill_": (lambda lib, x: x.clone().fill_(2.5), I),
    "copy_": (lambda lib, x: x.clone().copy_(lib.ones(4)), X),
    "copy_-casts": (lambda lib, x: x.clone().copy_(lib.full((2, 3), -2.7)), I),
}


@pytest.mark.parametrize("name", VALUES)
def test_values_dtypes_and_shapes_match_torch(name: str) -> None:
    f, data = VALUES[name]
    data = data.astype(np.float32) if data.dtype.kind == "f" else data
    with np.errstate(divide="ignore", invalid="ignore"):
        same(f(tg, tg.tensor(data)), f(torch, torch.tensor(data)))


def test_max_with_dim_is_a_named_tuple_like_torch() -> None:
    x = tg.tensor(X)
    result = x.max(1)
    values, indices = result  # unpacks
    assert type(result).__name__ == "max" and result._fields == ("values", "indices")
    assert result.values is values and result[1] is indices
    assert type(x.min(0)).__name__ == "min"
    assert isinstance(x.size(), tuple) and x.size() == (3, 4) and x.size().numel() == 12
    assert repr(x.size()) == "Size([3, 4])"


# ---- errors: PyTorch raises too, and ours is an instance of its class ------------------------------------------
ERRORS: dict[str, Callable[[Any, Any], Any]] = {
    "size-dim-out-of-range": lambda lib, x: x.size(2),
    "unsqueeze-out-of-range": lambda lib, x: x.unsqueeze(3),
    "squeeze-out-of-range": lambda lib, x: x.squeeze(-3),
    "flatten-start-after-end": lambda lib, x: x.flatten(1, 0),
    "flatten-out-of-range": lambda lib, x: x.flatten(2),
    "view-wrong-size": lambda lib, x: x.view(5),
    "view-two-wildcards": lambda lib, x: x.view(-1, -1),
    "reshape-wrong-size": lambda lib, x: x.reshape(2, 5),
    "expand-not-size-1": lambda lib, x: x.expand(3, 5),
    "expand-fewer-dims": lambda lib, x: x.expand(4),
    "expand-new-dim-minus-one": lambda lib, x: x.expand(-1, 3, 4),
    "repeat-too-few-sizes": lambda lib, x: x.repeat(2),
    "cat-empty-list": lambda lib, x: lib.cat([]),
    "cat-shape-mismatch": lambda lib, x: lib.cat([x, lib.zeros(3, 3)], 0),
    "cat-0d": lambda lib, x: lib.cat([x.sum(), x.sum()]),
    "cat-dim-out-of-range": lambda lib, x: lib.cat([x, x], 2),
    "cat-not-a-list": lambda lib, x: lib.cat(x, x),
    "stack-shape-mismatch": lambda lib, x: lib.stack([x, x[:1]]),
    "split-wrong-sections": lambda lib, x: x.split([1, 1], 0),
    "chunk-zero": lambda lib, x: x.chunk(0),
    "max-dim-out-of-range": lambda lib, x: x.max(2),
    "argmax-dim-out-of-range": lambda lib, x: x.argmax(-3),
    "sum-dim-out-of-range": lambda lib, x: x.sum(dim=5),
    "mean-int": lambda lib, x: x.long().mean(),
    "max-empty": lambda lib, x: lib.zeros(0, 3).max(0),
    "argmax-empty": lambda lib, x: lib.zeros(0).argmax(),
    "clamp-no-bounds": lambda lib, x: x.clamp(),
    "where-float-condition": lambda lib, x: lib.where(x, x, x),
    "where-shapes": lambda lib, x: lib.where(x > 0, x, lib.zeros(3, 3)),
    "gather-float-index": lambda lib, x: x.gather(1, lib.zeros(3, 4)),
    "gather-out-of-bounds": lambda lib, x: x.gather(1, lib.tensor([[4, 0, 1, 2]] * 3)),
    "gather-wrong-ndim": lambda lib, x: x.gather(1, lib.tensor([0, 1])),
    "masked_fill-float-mask": lambda lib, x: x.masked_fill(lib.zeros(3, 4), 1.0),
    "t-3d": lambda lib, x: x.unsqueeze(0).t(),
    "float()-many-elements": lambda lib, x: float(x),
    "int()-many-elements": lambda lib, x: int(x),
    "index-float": lambda lib, x: [1, 2][x[0, 0]],
    "index-many-elements": lambda lib, x: [1, 2][x.long()],
    "requires_grad_-int": lambda lib, x: x.long().requires_grad_(),
    "requires_grad_-false-on-non-leaf": lambda lib, x: (x.requires_grad_() * 2).requires_grad_(False),
    "zero_-leaf-requiring-grad": lambda lib, x: x.requires_grad_().zero_(),
    "fill_-leaf-requiring-grad": lambda lib, x: x.requires_grad_().fill_(1.0),
    "copy_-does-not-broadcast": lambda lib, x: x.clone().copy_(lib.zeros(3)),
    "fill_-tensor-with-dims": lambda lib, x: x.clone().fill_(lib.zeros(2)),
    "to-cuda": lambda lib, x: x.to("cuda"),
    "to-cuda-device": lambda lib, x: x.to(lib.device("cuda")),
    "cuda()": lambda lib, x: x.cuda(),
    "device-unknown": lambda lib, x: lib.device("gpu"),
    "zeros-on-cuda": lambda lib, x: lib.zeros(2, device="cuda"),
    "tensor-on-cuda": lambda lib, x: lib.tensor([1.0], device="cuda:0"),
    "zeros-negative": lambda lib, x: lib.zeros(-1),
    "randint-low-not-below-high": lambda lib, x: lib.randint(3, 3, (2,)),
    "arange-zero-step": lambda lib, x: lib.arange(0, 3, 0),
    "arange-wrong-direction": lambda lib, x: lib.arange(0, 3, -1),
    "randn-int-dtype": lambda lib, x: lib.randn(2, dtype=lib.int64),
    "ones-int-requires-grad": lambda lib, x: lib.ones(2, dtype=lib.long, requires_grad=True),
    "from_numpy-list": lambda lib, x: lib.from_numpy([1, 2]),
    "topk-k-too-large": lambda lib, x: x.topk(5),
    "flip-repeated-dim": lambda lib, x: x.flip(0, 0),
    "mm-3d": lambda lib, x: x.unsqueeze(0).mm(x.t()),
    "bmm-batch-mismatch": lambda lib, x: x.expand(2, 3, 4).bmm(lib.zeros(3, 4, 2)),
    "div_-int-by-int": lambda lib, x: x.long().div_(2),
    "add_-float-into-int": lambda lib, x: x.long().add_(0.5),
    "add_-leaf-requiring-grad": lambda lib, x: x.requires_grad_().add_(1.0),
    "cumsum-dim-out-of-range": lambda lib, x: x.cumsum(2),
    "and-floats": lambda lib, x: x & x,
    "invert-float": lambda lib, x: ~x,
    "iterate-0d": lambda lib, x: iter(x.sum()),
    "format-spec-on-a-matrix": lambda lib, x: f"{x:.3f}",
    "bincount-negative": lambda lib, x: lib.tensor([1, -1]).bincount(),
    "bincount-float": lambda lib, x: x.bincount(),
    "scatter_-out-of-bounds": lambda lib, x: lib.zeros(2, 2).scatter_(1, lib.tensor([[2], [0]]), 1.0),
    "div-bad-rounding-mode": lambda lib, x: x.div(2, rounding_mode="round"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_misuse_raises_like_torch(name: str) -> None:
    f = ERRORS[name]
    data = randn(3, 4).astype(np.float32)
    with pytest.raises(Exception) as theirs:
        f(torch, torch.tensor(data))
    expected = theirs.type if theirs.type is not torch.AcceleratorError else RuntimeError
    if issubclass(expected, AssertionError):  # "Torch not compiled with CUDA enabled"
        expected = RuntimeError
    with pytest.raises(expected):
        f(tg, tg.tensor(data))


def test_non_cpu_device_errors_name_the_device() -> None:
    for call in (lambda: tg.zeros(2).to("cuda:1"), lambda: tg.ones(1, device="mps"), lambda: tg.zeros(1).cuda()):
        with pytest.raises(RuntimeError, match=r"'(cuda|cuda:1|mps)' is not available.*CPU only"):
            call()


# ---- factories ---------------------------------------------------------------------------------------------
FACTORIES: dict[str, Callable[[Any], Any]] = {
    "tensor-floats": lambda lib: lib.tensor([1.0, 2.5]),
    "tensor-ints": lambda lib: lib.tensor([[1, 2], [3, 4]]),
    "tensor-bools": lambda lib: lib.tensor([True, False]),
    "tensor-mixed-int-float": lambda lib: lib.tensor([1, 2.5]),
    "tensor-scalar": lambda lib: lib.tensor(3.5),
    "tensor-int-scalar": lambda lib: lib.tensor(7),
    "tensor-float64-array": lambda lib: lib.tensor(np.arange(3.0)),
    "tensor-int32-array": lambda lib: lib.tensor(np.arange(3, dtype=np.int32)),
    "tensor-dtype": lambda lib: lib.tensor([1, 2], dtype=lib.float32),
    "tensor-python-float-dtype": lambda lib: lib.tensor([1, 2], dtype=float),
    "tensor-list-of-0d-tensors": lambda lib: lib.tensor([lib.tensor(1.5), lib.tensor(2.0)]),
    "tensor-of-tensor": lambda lib: lib.tensor(lib.ones(2, dtype=lib.float64)),
    "as_tensor": lambda lib: lib.as_tensor([1, 2], dtype=lib.float16),
    "zeros": lambda lib: lib.zeros(2, 3),
    "zeros-tuple": lambda lib: lib.zeros((2, 3)),
    "zeros-list": lambda lib: lib.zeros([4]),
    "zeros-0d": lambda lib: lib.zeros(()),
    "zeros-dtype": lambda lib: lib.zeros(2, dtype=lib.long),
    "zeros-size": lambda lib: lib.zeros(lib.ones(2, 3).size()),
    "ones": lambda lib: lib.ones(3, dtype=lib.float64),
    "ones-bool": lambda lib: lib.ones(2, 2, dtype=lib.bool),
    "empty-shape": lambda lib: lib.empty(2, 3).shape,
    "full-float": lambda lib: lib.full((2, 2), 1.5),
    "full-int": lambda lib: lib.full((3,), 7),
    "full-bool": lambda lib: lib.full((2,), True),
    "full-dtype": lambda lib: lib.full([2], 3, dtype=lib.float32),
    "arange": lambda lib: lib.arange(5),
    "arange-start-end": lambda lib: lib.arange(2, 7),
    "arange-step": lambda lib: lib.arange(10, 0, -3),
    "arange-float": lambda lib: lib.arange(0, 1, 0.1),
    "arange-float-end": lambda lib: lib.arange(2.5),
    "arange-dtype": lambda lib: lib.arange(4, dtype=lib.float32),
    "arange-empty": lambda lib: lib.arange(3, 3),
    "linspace": lambda lib: lib.linspace(0, 1, 5),
        "linspace-one": lambda lib: lib.linspace(2, 3, 1),
    "linspace-zero": lambda lib: lib.linspace(2, 3, 0),
    "eye": lambda lib: lib.eye(3),
    "eye-rect": lambda lib: lib.eye(2, 4, dtype=lib.int64),
    "zeros_like": lambda lib: lib.zeros_like(lib.ones(2, 3, dtype=lib.int32)),
    "ones_like-dtype": lambda lib: lib.ones_like(lib.ones(2), dtype=lib.float64),
    "full_like": lambda lib: lib.full_like(lib.zeros(2, dtype=lib.float64), 4),
    "empty_like-shape": lambda lib: lib.empty_like(lib.zeros(2, 5)).shape,
    "from_numpy": lambda lib: lib.from_numpy(np.arange(6, dtype=np.int16).reshape(2, 3)),
    "rand-shape": lambda lib: lib.rand(2, 3).shape,
    "rand-dtype": lambda lib: lib.rand(2, dtype=lib.float64).dtype == lib.float64,
    "randn-shape": lambda lib: lib.randn((4,)).shape,
    "rand_like-dtype": lambda lib: lib.rand_like(lib.zeros(2, dtype=lib.float64)).dtype == lib.float64,
    "randn_like-shape": lambda lib: lib.randn_like(lib.zeros(3, 1)).shape,
    "randint-dtype-shape": lambda lib: (lib.randint(0, 5, (2, 3)).dtype == lib.int64, lib.randint(5, (4,)).shape),
    "randperm-dtype": lambda lib: lib.randperm(6).dtype == lib.long,
    "get_default_dtype": lambda lib: lib.get_default_dtype() == lib.float32,
    "is_tensor": lambda lib: (lib.is_tensor(lib.ones(1)), lib.is_tensor([1])),
    "numel": lambda lib: lib.numel(lib.ones(2, 3)),
    "cuda-available": lambda lib: (lib.cuda.is_available(), lib.cuda.device_count()),
    "mps-available": lambda lib: lib.backends.mps.is_available(),
    "device": lambda lib: (str(lib.device("cpu")), lib.device("cpu").type, lib.device("cpu") == "cpu",
                           lib.device("cpu:0") == lib.device("cpu", 0), lib.device("cpu") == lib.device("cpu:0")),
    "device-with-index": lambda lib: (str(lib.device("cuda", 1)), lib.device("cuda:1").index),
    "tensor-device": lambda lib: (lib.ones(1).device.type, lib.ones(1).device == lib.device("cpu")),
    "dtype-aliases": lambda lib: (lib.float == lib.float32, lib.double == lib.float64, lib.long == lib.int64,
                                  lib.int == lib.int32, lib.half == lib.float16, lib.short == lib.int16),
}


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor")
@pytest.mark.parametrize("name", FACTORIES)
def test_factories_match_torch(name: str) -> None:
    ours, theirs = FACTORIES[name](tg), FACTORIES[name](torch)
    if isinstance(theirs, torch.Size):
        theirs = tuple(theirs)
    same(ours, theirs)


def test_linspace_and_arange_floats_are_torch_to_an_ulp() -> None:
    """PyTorch's formula; its vectorised kernel (8 or 16 lanes, by CPU) rounds some middle values one ulp
    differently, so the ends are exact and the rest within one ulp of the largest magnitude."""
    for start, end, steps in [(0, 1, 7), (-3.7, 11.2, 33), (1e-3, 2e3, 100), (5, -5, 12), (2, 3, 1), (0, 10, 50)]:
        for ours, theirs in [(None, torch.float32), (tg.float64, torch.float64)]:
            a, b = tg.linspace(start, end, steps, dtype=ours), torch.linspace(start, end, steps, dtype=theirs)
            assert a.shape == tuple(b.shape) and a.dtype == np.dtype(str(theirs)[6:])
            assert a.data[0] == b[0].item() and a.data[-1] == b[-1].item()
            np.testing.assert_allclose(a.data, b.numpy(), rtol=0, atol=np.spacing(np.abs(b.numpy()).max()))
    for args in [(0, 1, 0.1), (-2.5, 3.3, 0.7), (1, 2, 0.01), (0, -1, -0.3)]:
        a, b = tg.arange(*args), torch.arange(*args)
        assert a.shape == tuple(b.shape) and a.dtype == np.float32
        np.testing.assert_allclose(a.data, b.numpy(), rtol=0, atol=np.spacing(np.abs(b.numpy()).max()))


def test_manual_seed_drives_every_random_factory() -> None:
    def draw() -> list[np.ndarray]:
        return [tg.rand(3).data, tg.randn(2, 2).data, tg.randint(0, 10, (8,)).data, tg.randperm(20).data,
                tg.rand_like(tg.zeros(2)).data, tg.randn_like(tg.zeros(2)).data, nn.Linear(2, 2).weight.data]
    tg.manual_seed(123)
    first = draw()
    tg.manual_seed(123)
    again = draw()
    tg.manual_seed(124)
    other = draw()
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    r = tg.rand(10000)
    assert r.dtype == np.float32 and 0 <= r.data.min() and r.data.max() < 1 and abs(float(r.mean()) - 0.5) < 0.02
    n = tg.randn(10000, dtype=tg.float64)
    assert abs(float(n.mean())) < 0.05 and abs(float(n.std()) - 1) < 0.05
    assert sorted(tg.randperm(50).tolist()) == list(range(50))
    k = tg.randint(-3, 4, (5000,))
    assert k.data.min() == -3 and k.data.max() == 3


def test_tensor_copies_and_from_numpy_shares() -> None:
    a = np.arange(4.0)
    t, shared = tg.tensor(a), tg.from_numpy(a)
    a[0] = 9.0
    assert t.data[0] == 0.0 and shared.data[0] == 9.0
    assert shared.dtype == np.float64 and tg.tensor(a, requires_grad=True).requires_grad
    assert not tg.zeros(2).requires_grad and tg.zeros(2, requires_grad=True).is_leaf


def test_namespaces_pytorch_scripts_probe() -> None:
    assert tg.cuda.is_available() is False and tg.accelerator.is_available() is False
    assert tg.accelerator.current_accelerator() is None
    tg.cuda.manual_seed(1)
    tg.cuda.manual_seed_all(1)  # scripts seed CUDA unconditionally: a no-op here
    tg.backends.cudnn.benchmark = True
    import tinygrad_cnn.cuda as cuda_module  # importable by name, as torch.cuda

    assert cuda_module is tg.cuda
    device = tg.device("cuda" if tg.cuda.is_available() else "cpu")
    model = nn.Linear(3, 2)
    assert model.to(device) is model
    x = tg.randn(4, 3).to(device)
    assert x.device == device and x.device.type == "cpu" and repr(device) == "device(type='cpu')"
    assert {tg.device("cpu"): 1}[tg.device("cpu")] == 1


# ---- conversions, in place, requires_grad_, to -----------------------------------------------------------------
def test_to_returns_the_same_tensor_when_nothing_changes() -> None:
    x = tg.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(tg.float32) is x and x.to(x) is x
    assert x.to(tg.device("cpu"), tg.float32) is x
    assert x.to("cpu", copy=True) is not x
    with pytest.raises(TypeError, match="unexpected keyword"):
        x.to(dtpye=tg.float64)


def test_casts_keep_the_graph_between_floats_only() -> None:
    x = tg.tensor([1.5, -2.5], requires_grad=True)
    assert x.double().requires_grad and x.half().requires_grad
    assert not x.long().requires_grad and x.long().is_leaf and not x.bool().requires_grad
    (x.double() * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    assert x.grad.dtype == np.float32


def test_in_place_updates_bump_the_version_and_are_seen_by_backward() -> None:
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    y = w * w
    with tg.no_grad():
        w.fill_(3.0)  # allowed under no_grad, as in PyTorch
    assert w.data.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="modified in place"):
        y.sum().backward()
    v = tg.zeros(3)
    before = v._version
    v.copy_(tg.tensor([1, 2, 3]))
    assert v.tolist() == [1.0, 2.0, 3.0] and v.dtype == np.float32 and v._version == before + 1
    view = v[1:]
    view.zero_()  # writes through to the base, as a PyTorch view does
    assert v.tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match="read-only"):
        tg.ones(1, 3).expand(2, 3).fill_(0.0)


def test_requires_grad_and_clone() -> None:
    x = tg.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    assert x.requires_grad_(False) is x and not x.requires_grad
    y = tg.tensor([1.0, 2.0], requires_grad=True)
    c = y.clone()
    assert c.grad_fn is not None and c.data is not y.data
    c.data[0] = 5.0
    assert y.data[0] == 1.0


def test_views_and_flatten_defaults() -> None:
    x = tg.arange(24).reshape(2, 3, 4)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12)
    assert nn.Flatten()(x.float()).shape == (2, 12)  # the layer keeps the batch (start_dim=1), as in PyTorch
    assert x.view(-1).shape == (24,) and x.view(6, 4).shape == (6, 4) and x.view_as(tg.zeros(4, 6)).shape == (4, 6)
    assert tg.zeros(0, 3, 2).flatten(1).shape == (0, 6)  # an empty batch keeps its feature size


@pytest.mark.parametrize("op", [operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge])
def test_comparison_methods_agree_with_torch_on_broadcasting(op: Callable) -> None:
    a, b = randn(3, 1), randn(4)
    name = op.__name__
    same(getattr(tg.tensor(a), name)(tg.tensor(b)), getattr(torch.tensor(a), name)(torch.tensor(b)))
    same(getattr(tg.tensor(a), name)(b[0].item()), getattr(torch.tensor(a), name)(b[0].item()))
    with pytest.raises(ValueError, match="do not broadcast"):
        getattr(tg.tensor(a), name)(tg.zeros(2, 2))


# ---- a PyTorch-style loop, the same code for both frameworks -------------------------------------------------
def pytorch_style_steps(lib: Any, images: np.ndarray, labels: np.ndarray, weight: np.ndarray) -> list[Any]:
    """What a script does with the Tensor API between its imports and its model: pick a device, move data,
    train a linear classifier by hand for a few steps, then count correct predictions."""
    device = lib.device("cuda" if lib.cuda.is_available() else "cpu")
    lib.manual_seed(0)
    x = lib.from_numpy(images).to(device)
    y = lib.tensor(labels, dtype=lib.long).to(device)
    w = lib.tensor(weight, requires_grad=True)
    b = lib.zeros(3, requires_grad=True)
    seen = []
    for _ in range(3):
        logits = lib.flatten(x, 1) @ w.t() + b
        loss = -logits.log_softmax(dim=1).gather(1, y.unsqueeze(1)).squeeze(1).mean()
        loss.backward()
        with lib.no_grad():
            w -= 0.5 * w.grad
            b -= 0.5 * b.grad
            w.grad.zero_()
            b.grad.zero_()
        seen.append(loss.item())
    with lib.no_grad():
        logits = lib.flatten(x, 1) @ w.t() + b
        pred = logits.argmax(dim=1, keepdim=True)
        correct = pred.eq(y.view_as(pred)).sum().item()
        confidence, chosen = logits.softmax(dim=1).max(1)
        spread = lib.stack([logits.amax(1), logits.amin(1)], dim=1).clamp(-5, 5)
    return [*seen, correct, chosen.tolist(), confidence.numpy().copy(), spread.numpy().copy(), x.size(0)]


def test_a_pytorch_style_loop_gives_pytorch_numbers() -> None:
    rng = np.random.default_rng(7)
    images, labels = rng.standard_normal((12, 1, 2, 2)).astype(np.float32), rng.integers(0, 3, 12)
    weight = (rng.standard_normal((3, 4)) * 0.3).astype(np.float32)
    ours, theirs = pytorch_style_steps(tg, images, labels, weight), pytorch_style_steps(torch, images, labels, weight)
    np.testing.assert_allclose(ours[:3], theirs[:3], rtol=1e-5)
    assert ours[3:5] == theirs[3:5] and ours[-1] == theirs[-1] == 12
    np.testing.assert_allclose(ours[5], theirs[5], rtol=1e-5)
    np.testing.assert_allclose(ours[6], theirs[6], rtol=1e-5)


def test_generator_objects_as_in_pytorch() -> None:
    """torch.Generator().manual_seed(n): reproducible draws wherever a generator is taken."""
    from tinygrad_cnn.utils.data import TensorDataset, random_split

    g = tg.Generator().manual_seed(42)
    assert isinstance(g, np.random.Generator) and g.initial_seed() == 42 and g.device == tg.device("cpu")
    first = tg.randn(3, generator=g).tolist() + tg.randperm(5, generator=g).tolist()
    g.manual_seed(42)
    assert tg.randn(3, generator=g).tolist() + tg.randperm(5, generator=g).tolist() == first
    data = TensorDataset(tg.arange(10))
    split = [list(s.indices) for s in random_split(data, [7, 3], generator=tg.Generator().manual_seed(1))]
    assert split == [list(s.indices) for s in random_split(data, [7, 3], generator=tg.Generator().manual_seed(1))]
    assert isinstance(tg.manual_seed(3), tg.Generator) and tg.initial_seed() == 3
    state = g.get_state()
    a = g.random(2)
    np.testing.assert_array_equal(g.set_state(state).random(2), a)
    assert g.seed() == g.initial_seed()
    with pytest.raises(RuntimeError, match="'cuda' is not available"):
        tg.Generator(device="cuda")
    with pytest.raises(ValueError, match="non-negative int"):
        g.manual_seed(-1)


def test_every_name_is_pytorchs() -> None:
    """The function forms and the Tensor methods use PyTorch's names (numpy's astype and pad are the
    library's own, kept from before)."""
    from tinygrad_cnn.tensor_methods import FUNCTIONS

    assert [n for n in FUNCTIONS if not hasattr(torch, n)] == []
    own = [n for n in dir(Tensor) if not n.startswith("_") and not hasattr(torch.Tensor, n)]
    assert own == ["astype", "pad"]
    factories = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "eye", "arange", "linspace",
                 "rand", "randn", "randint", "randperm", "zeros_like", "ones_like", "full_like", "empty_like",
                 "rand_like", "randn_like", "manual_seed", "seed", "initial_seed", "Generator", "device", "cat",
                 "concat", "concatenate", "stack", "where", "is_tensor", "numel", "get_default_dtype", "Size"]
    assert [n for n in factories if not hasattr(tg, n) or not hasattr(torch, n)] == []


def test_function_forms_take_the_data_array() -> None:
    """`.data` is the ndarray here (a Tensor in PyTorch), so the tutorial's torch.max(outputs.data, 1) must
    still give (values, indices)."""
    outputs = tg.tensor([[0.1, 2.0, -1.0], [3.0, 0.5, 0.2]], requires_grad=True)
    _, predicted = tg.max(outputs.data, 1)
    assert predicted.tolist() == [1, 0] and (predicted == tg.tensor([1, 1])).sum().item() == 1
    with pytest.raises(TypeError, match="must be a Tensor, not list"):
        tg.max([1, 2], 0)
