"""Timing shared by the benchmarks."""

from __future__ import annotations

import time

import numpy as np


def time_calls(call, repeats: int) -> tuple[float, float]:
  """``(first, median)``: seconds of a warm-up ``call()`` and the median of ``repeats`` more.

  ``call`` must block until its work is done.
  """
  began = time.perf_counter()
  call()
  first = time.perf_counter() - began
  times = []
  for _ in range(repeats):
    began = time.perf_counter()
    call()
    times.append(time.perf_counter() - began)
  return first, float(np.median(times))
