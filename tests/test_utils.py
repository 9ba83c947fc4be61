"""Tests for tinygrad_cnn.utils: conv/pool output sizes, strict tiling, errors, and PyTorch's shapes."""

from __future__ import annotations

import itertools

import pytest

from tinygrad_cnn import nn
from tinygrad_cnn.tools.summary import count_parameters
from tinygrad_cnn.utils import conv_output_size, pool_output_size


# The notebook's three worked layers: (input H, C_in, filters, kernel, stride) -> H_out as it works them out.
@pytest.mark.parametrize("size, c_in, c_out, k, stride, expected", [
    (144, 3, 6, 3, 1, 142),   # (144 - 3) / 1 + 1
    (60, 24, 48, 3, 1, 58),   # (60 - 3) / 1 + 1
    (20, 10, 20, 3, 2, 9),    # floor((20 - 3) / 2) + 1 = floor(8.5) + 1
])
def test_notebook_layers(size: int, c_in: int, c_out: int, k: int, stride: int, expected: int) -> None:
    assert conv_output_size(size, k, stride) == expected
    assert conv_output_size((size, size), k, stride) == (expected, expected)
    assert count_parameters(nn.Conv2d(c_in, c_out, k, stride)) == k * k * c_in * c_out + c_out


def test_notebook_layer_three_ignores_the_last_row_and_column() -> None:
    with pytest.raises(ValueError, match=r"the last 1 of the 20 input rows/columns are silently ignored"):
        conv_output_size(20, 3, stride=2, strict=True)
    with pytest.raises(ValueError, match=r"the last 1 of the 20 input rows are silently ignored"):
        conv_output_size((20, 21), 3, stride=2, strict=True)  # 21 - 3 = 18 tiles exactly at stride 2
    with pytest.raises(ValueError, match=r"the last 1 of the 20 input columns are silently ignored"):
        conv_output_size((21, 20), 3, stride=2, strict=True)


def test_strict_accepts_exact_tilings_and_dropped_padding() -> None:
    assert conv_output_size(21, 3, stride=2, strict=True) == 10
    assert conv_output_size(144, 3, strict=True) == 142
    # 224 + 2 - 3 = 223 is odd, so the last padded position is unused; but it is padding, not input.
    assert conv_output_size(224, 3, stride=2, padding=1, strict=True) == 112
    assert pool_output_size(28, 2, strict=True) == 14
    with pytest.raises(ValueError, match=r"the last 1 of the 5 input rows/columns"):
        pool_output_size(5, 2, strict=True)


def _unread_rows(h: int, k: int, s: int, p: int, d: int) -> tuple[int, int]:
    """(rows no window reads, of which after the last row read), by listing every window's rows."""
    out = (h + 2 * p - d * (k - 1) - 1) // s + 1
    read = {o * s + t * d - p for o in range(out) for t in range(k)} & set(range(h))
    return h - len(read), h - 1 - max(read, default=-1)


def test_strict_counts_ignored_rows_by_brute_force() -> None:
    for h, k, s, p, d in itertools.product(range(1, 13), range(1, 5), range(1, 5), range(3), range(1, 3)):
        if h + 2 * p < d * (k - 1) + 1:
            continue
        ignored, tail = _unread_rows(h, k, s, p, d)
        if ignored == 0:
            assert conv_output_size(h, k, s, p, d, strict=True) == conv_output_size(h, k, s, p, d)
            continue
        message = (rf"the last {ignored} of the {h} input rows/columns are silently ignored" if ignored == tail else
                   rf"{ignored} of the {h} input rows/columns are silently ignored \({tail} after the last window, "
                   rf"{ignored - tail} skipped between windows")
        with pytest.raises(ValueError, match=message):
            conv_output_size(h, k, s, p, d, strict=True)


def test_strict_catches_a_stride_larger_than_the_window() -> None:
    # 1x1 convolution at stride 2 (a ResNet shortcut) reads rows 0, 2, 4, 6: half of the 8 are skipped.
    with pytest.raises(ValueError, match=r"4 of the 8 input rows/columns are silently ignored \(1 after the last "
                                         r"window, 3 skipped between windows by the stride\)"):
        conv_output_size(8, 1, stride=2, strict=True)


def test_int_or_pair_results() -> None:
    assert isinstance(conv_output_size(28, 5), int)
    assert conv_output_size((28, 32), 5) == (24, 28)
    assert conv_output_size(28, (5, 3)) == (24, 26)
    assert conv_output_size((10, 12), (3, 5), stride=(1, 2), padding=(1, 0), dilation=(2, 1)) == (8, 4)
    assert pool_output_size((28, 27), 2) == (14, 13)
    assert pool_output_size(27, 3, stride=2, padding=1) == 14


def test_window_larger_than_input_names_the_sizes() -> None:
    with pytest.raises(ValueError, match=r"conv_output_size: a window spanning 5 rows/columns \(kernel 5, dilation 1\)"
                                         r" does not fit in the padded input of 3 .*would be -1"):
        conv_output_size(3, 5)
    with pytest.raises(ValueError, match=r"spanning 7 columns \(kernel 4, dilation 2\).*padded input of 6 columns"):
        conv_output_size((10, 4), (3, 4), padding=1, dilation=2)
    with pytest.raises(ValueError, match=r"pool_output_size: a window spanning 3"):
        pool_output_size(2, 3)


@pytest.mark.parametrize("call, error, message", [
    (lambda: conv_output_size(28, 3, stride=0), ValueError, r"conv_output_size: stride must be >= 1, got 0"),
    (lambda: conv_output_size(28, 3, padding=-1), ValueError, r"padding must be >= 0, got -1"),
    (lambda: conv_output_size(0, 3), ValueError, r"input_size must be >= 1, got 0"),
    (lambda: conv_output_size(28, 2.5), TypeError, r"kernel_size must be an int or a pair of ints, got 2.5"),
    (lambda: conv_output_size((28, 28, 3), 3), TypeError, r"input_size must be an int or a pair"),
    (lambda: conv_output_size(28, True), TypeError, r"kernel_size must be an int or a pair"),
    (lambda: pool_output_size(28, 2, padding=2), ValueError, r"pool_output_size: padding 2 must be at most half"),
])
def test_bad_arguments(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_output_sizes_match_pytorch() -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional

    def meta(*shape: int):  # shapes only: no memory, no arithmetic
        return torch.empty(*shape, device="meta")

    for h, w, k, s, p, d in itertools.product(range(1, 10), (5, 8), range(1, 5), range(1, 4), range(3), range(1, 3)):
        try:
            ours = conv_output_size((h, w), k, s, p, d)
        except ValueError:
            with pytest.raises(RuntimeError):
                F.conv2d(meta(1, 1, h, w), meta(1, 1, k, k), stride=s, padding=p, dilation=d)
            continue
        assert tuple(F.conv2d(meta(1, 1, h, w), meta(1, 1, k, k), stride=s, padding=p, dilation=d).shape[2:]) == ours
    for h, k, s, p in itertools.product(range(1, 10), range(1, 5), (None, 1, 2, 3), range(3)):
        for pool in (F.max_pool2d, F.avg_pool2d):
            try:
                ours = pool_output_size((h, h), k, s, p)
            except ValueError:
                with pytest.raises(RuntimeError):
                    pool(meta(1, 1, h, h), k, s, p)
                continue
            assert tuple(pool(meta(1, 1, h, h), k, s, p).shape[2:]) == ours
