"""Peak memory of VGG16's first fully connected layer alone: Linear(25088, 4096), batch 2, forward,
backward and a plain SGD step, tinygrad_cnn and PyTorch each in a fresh process.

    python benchmarks/linear_memory.py

Where VGG16's memory goes beyond the convolutions (docs/performance.md): the layer's weight is 392 MiB,
so a framework that writes its gradient once and updates in place rises by about that much.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import numpy as np
from tinygrad_cnn.runtime.memory import tune_malloc
from tinygrad_cnn.tools.bench import status_kib
tune_malloc()
if sys.argv[1] == "ours":
    from tinygrad_cnn import Tensor, nn, optim
    layer, x = nn.Linear(25088, 4096), Tensor(np.random.rand(2, 25088).astype(np.float32))
    opt = optim.SGD(layer.parameters(), lr=0.01)
else:
    import torch
    layer, x = torch.nn.Linear(25088, 4096), torch.rand(2, 25088)
    opt = torch.optim.SGD(layer.parameters(), lr=0.01)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark: setup does not count
before = status_kib("VmRSS")
for _ in range(2):
    opt.zero_grad()
    layer(x).sum().backward()
    opt.step()
print((status_kib("VmHWM") - before) / 1024)
"""

if __name__ == "__main__":
    for framework in ("ours", "torch"):
        out = subprocess.run([sys.executable, "-c", PROBE, framework], capture_output=True, text=True, check=True)
        print(f"{framework}: peak rise {float(out.stdout):.0f} MiB over 2 steps (the weight: 392 MiB)")
