"""Matrix products split over the threads of `parallel`.

While the batch threads are on, numpy's BLAS runs on one thread (`runtime.threads` pins it), so a big
product such as a fully connected layer's would use one core: here it is cut into row blocks of `a`,
one per thread. Each block is its own BLAS call, so a result can differ from one call's in the last bits
(BLAS blocks its sums by the shape it is given), as a threaded BLAS's would.
"""

from __future__ import annotations

import numpy as np

from . import parallel


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """np.matmul(a, b): (M, K) @ (K, N) -> (M, N) in row blocks over the threads when big enough;
    any other shapes (batched, 1-d, mismatched) go to np.matmul as they are."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        return np.matmul(a, b)
    (m, k), n = a.shape, b.shape[1]
    parts = parallel.batch_parts(m, max(1, m), m * k * n)
    if len(parts) == 1:
        return np.matmul(a, b)
    out = np.empty((m, n), dtype=np.result_type(a, b))                    # (M, N)
    parallel.map_parts(lambda rows: np.matmul(a[rows], b, out=out[rows]), parts)
    return out
