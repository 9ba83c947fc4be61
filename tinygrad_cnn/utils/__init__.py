"""Output sizes of convolution and pooling layers, checked, for planning an architecture by hand.

Both use the floor formula of `ops.conv.conv_out_size`, the one the ops themselves run:

    H_out = floor((H + 2P - D(K - 1) - 1) / S) + 1

The floor hides a trap: when the windows do not tile the padded input exactly, the last
(H + 2P - D(K-1) - 1) mod S padded rows (or columns) are never read; a stride larger than the window
skips rows between windows too. `strict=True` turns that into an error whenever real input (not just
padding) goes unread.

`tinygrad_cnn.utils.data` holds the datasets and the DataLoader, as `torch.utils.data`.
"""

from __future__ import annotations

import numpy as np

from ..functional import as_pair
from ..ops.conv import conv_out_size
from . import data  # tinygrad_cnn.utils.data, as torch.utils.data

IntOrPair = int | tuple[int, int]

__all__ = ["conv_output_size", "data", "pool_output_size"]

_AXES = ("rows", "columns")


def _check_every_input_read(fn: str, what: str, h: int, k: int, s: int, p: int, d: int, size: int) -> None:
    """Raise if a window of the layer never reads some input row: after the last window (the floor dropped
    them) or between windows (stride larger than the window, or dilation holes the stride skips)."""
    read_rows = (np.arange(size)[:, None] * s + np.arange(k)[None, :] * d - p).ravel()   # (size * k,)
    read = np.zeros(h, dtype=bool)
    read[read_rows[(read_rows >= 0) & (read_rows < h)]] = True
    if read.all():
        return
    tail = h - 1 - int(np.flatnonzero(read)[-1]) if read.any() else h
    ignored = h - int(read.sum())
    where = (f"the last {ignored} of the {h} input {what} are silently ignored" if ignored == tail else
             f"{ignored} of the {h} input {what} are silently ignored ({tail} after the last window, "
             f"{ignored - tail} skipped between windows by the stride)")
    raise ValueError(f"{fn}: windows of {d * (k - 1) + 1} {what} (kernel {k}, dilation {d}) at stride {s} over the "
                     f"padded input of {h + 2 * p} {what} (input {h} + 2 * padding {p}) give {size} outputs, and "
                     f"{where}: no window reads them")


def _output_size(fn: str, input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair, padding: IntOrPair,
                 dilation: IntOrPair, strict: bool) -> IntOrPair:
    args = {"input_size": input_size, "kernel_size": kernel_size, "stride": stride, "padding": padding,
            "dilation": dilation}
    minimum = {"input_size": 1, "kernel_size": 1, "stride": 1, "padding": 0, "dilation": 1}
    pairs = {name: as_pair(value, name, fn, minimum[name]) for name, value in args.items()}
    paired = not all(isinstance(v, (int, np.integer)) for v in args.values())
    out = []
    for axis in range(2):
        h, k, s, p, d = (pairs[name][axis] for name in args)
        what = _AXES[axis] if paired else "rows/columns"
        size = conv_out_size(h, k, s, p, d)
        span = d * (k - 1) + 1  # how many input positions one window covers
        if size < 1:
            raise ValueError(f"{fn}: a window spanning {span} {what} (kernel {k}, dilation {d}) does not fit in the "
                             f"padded input of {h + 2 * p} {what} (input {h} + 2 * padding {p}): the output size "
                             f"would be {size}")
        if strict:
            _check_every_input_read(fn, what, h, k, s, p, d, size)
        out.append(size)
    return tuple(out) if paired else out[0]


def conv_output_size(input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
                     dilation: IntOrPair = 1, strict: bool = False) -> IntOrPair:
    """Spatial output size of a Conv2d: an int when every argument is an int, else an (H, W) pair.

    >>> conv_output_size(144, 3)
    142
    >>> conv_output_size((20, 20), 3, stride=2)
    (9, 9)

    Raises ValueError when the (dilated) kernel is larger than the padded input, and with `strict=True`
    when some input rows or columns would never be read by any window.
    """
    return _output_size("conv_output_size", input_size, kernel_size, stride, padding, dilation, strict)


def pool_output_size(input_size: IntOrPair, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                     padding: IntOrPair = 0, strict: bool = False) -> IntOrPair:
    """Spatial output size of MaxPool2d/AvgPool2d (floor mode); stride defaults to kernel_size, as in PyTorch.

    Padding may be at most half the kernel (PyTorch's rule, so that no window is all padding).
    """
    fn = "pool_output_size"
    stride = kernel_size if stride is None else stride
    kernel, pad = as_pair(kernel_size, "kernel_size", fn, 1), as_pair(padding, "padding", fn, 0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(f"{fn}: padding {padding!r} must be at most half the kernel size {kernel_size!r}")
    return _output_size(fn, input_size, kernel_size, stride, padding, 1, strict)
