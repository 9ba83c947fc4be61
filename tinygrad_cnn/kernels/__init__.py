"""The numpy kernels behind the convolution, pooling and matrix-product primitives, apart from their autograd.

`reference` holds the definitions (plain, whole-batch, for tests); `conv` and `pool` the fast kernels
that the primitives in `tinygrad_cnn.ops` call, with the same arguments and results; `conv.plan` is
the one place where a layer's kernels are chosen; `parallel` splits a batch over threads, `matmul` a
big matrix product's rows; `windows`
is the sliding-window geometry both share. numpy only: nothing here knows about autograd or BLAS threads.
"""

from . import conv, matmul, parallel, pool, reference
from .windows import Pair, col2im, conv_out_size, out_hw, pad_hw, window_view

__all__ = ["Pair", "col2im", "conv", "conv_out_size", "matmul", "out_hw", "pad_hw", "parallel", "pool",
           "reference", "window_view"]
