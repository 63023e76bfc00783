"""The reference point of how public asynchronous-SGD simulators are written: PyTorch eager.

One ``nn.Module``; the master's weights, every worker's read copy and every
worker's momentum live in Python lists of tensors. A master step copies the
arriving worker's read weights into the module, computes one gradient on a
batch (forward + backward, eager), applies it to the master weights with that
worker's momentum (DANA-style per-worker momentum), and copies the master
weights into the worker's read copy. One gradient per master step; the
arrival order is drawn uniformly (its cost does not depend on it).

Optional: needs ``torch`` (CPU wheel: ``pip install torch --index-url
https://download.pytorch.org/whl/cpu``). Models: the same architectures as
``dana_jax.models`` for ``mlp``, ``mlp64``, ``digits_mlp``, ``cnn`` and
``resnet20`` (channels-last memory format for the convolutional ones,
PyTorch's faster layout on CPU).
Runs on CUDA when torch sees a GPU (``device="auto"``), else on the CPU; the
device is recorded with the result. (The CUDA path has not been run by us:
no GPU was lent to the sessions that wrote it.)
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.timing import time_calls


class _BasicBlock(nn.Module):
  def __init__(self, cin, cout, stride):
    super().__init__()
    self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(cout)
    self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(cout)
    self.stride, self.extra = stride, cout - cin

  def forward(self, x):
    y = F.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    shortcut = x
    if self.stride != 1 or self.extra:  # option A: subsample, zero-pad channels
      shortcut = F.pad(x[:, :, ::self.stride, ::self.stride],
                       (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
    return F.relu(y + shortcut)


class _ResNet(nn.Module):
  def __init__(self, depth=20, classes=10):
    super().__init__()
    n = (depth - 2) // 6
    self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                              nn.ReLU())
    blocks, cin = [], 16
    for stage, width in enumerate((16, 32, 64)):
      for i in range(n):
        blocks.append(_BasicBlock(cin, width, 2 if stage > 0 and i == 0 else 1))
        cin = width
    self.blocks = nn.Sequential(*blocks)
    self.fc = nn.Linear(64, classes)

  def forward(self, x):
    return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


def _small_cnn():
  return nn.Sequential(
      nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


MODELS = {  # name: (factory, input shape NCHW without batch, convolutional)
    "mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(),
                                  nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)),
            (1, 28, 28), False),
    "mlp64": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(),
                                    nn.Linear(64, 10)), (1, 28, 28), False),
    "digits_mlp": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(),
                                         nn.Linear(64, 10)), (1, 8, 8), False),
    "cnn": (_small_cnn, (1, 28, 28), True),
    "resnet20": (lambda: _ResNet(20, 10), (3, 32, 32), True),
}


def _device(device: str) -> torch.device:
  if device == "auto":
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
  if device not in ("cpu", "cuda"):
    raise ValueError(f"device={device!r} is not allowed: choose 'auto', 'cpu' or 'cuda'.")
  if device == "cuda" and not torch.cuda.is_available():
    raise ValueError("device='cuda' is not allowed here: torch sees no CUDA device.")
  return torch.device(device)


def measure(model_name: str, num_workers: int, batch_size: int, steps: int, repeats: int = 3,
            lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 1e-4,
            device: str = "auto") -> dict:
  """Seconds per master step of the eager simulator (median over ``repeats`` timed calls)."""
  if model_name not in MODELS:
    raise ImportError(f"no PyTorch model for {model_name!r} (have {sorted(MODELS)})")
  dev = _device(device)
  torch.manual_seed(0)
  torch.set_num_threads(os.cpu_count() or 1)
  factory, shape, conv = MODELS[model_name]
  model = factory()
  fmt = torch.channels_last if conv else torch.contiguous_format
  model = model.to(device=dev, memory_format=fmt).train()
  params = list(model.parameters())
  master = [p.detach().clone() for p in params]
  reads = [[m.clone() for m in master] for _ in range(num_workers)]
  momenta = [[torch.zeros_like(m) for m in master] for _ in range(num_workers)]
  x = torch.randn((16 * batch_size,) + shape, device=dev).contiguous(memory_format=fmt)
  y = torch.randint(0, 10, (16 * batch_size,), device=dev)
  rng = np.random.default_rng(0)

  def master_step(worker, start):
    with torch.no_grad():
      for p, r in zip(params, reads[worker], strict=True):
        p.copy_(r)
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x[start:start + batch_size]), y[start:start + batch_size])
    loss.backward()
    with torch.no_grad():
      for m, v, p in zip(master, momenta[worker], params, strict=True):
        v.mul_(momentum).add_(p.grad).add_(m, alpha=weight_decay)
        m.sub_(v, alpha=lr)
      for r, m in zip(reads[worker], master, strict=True):
        r.copy_(m)

  def call():
    for _ in range(steps):
      master_step(int(rng.integers(num_workers)), int(rng.integers(15 * batch_size)))
    if dev.type == "cuda":
      torch.cuda.synchronize(dev)  # kernels run asynchronously: time their completion

  first, seconds = time_calls(call, repeats)
  return {"seconds_per_step": seconds / steps, "seconds_per_gradient": seconds / steps,
          "warmup_seconds": first, "torch_threads": torch.get_num_threads(),
          "torch_device": str(dev)}
