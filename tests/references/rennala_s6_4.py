"""docs/spec.md §6.4, Rennala SGD: each round's end time and its cancelled jobs."""

from __future__ import annotations

import heapq

import numpy as np


def rennala_round_times(batch_times, num_rounds, num_gradients):
  """docs/spec.md §6.4 literally: in round r each worker runs jobs back to back from T_r on its
  next draws; completions are taken in (time, worker id) order until S have come, and
  T_(r+1) is the S-th. The worker whose completion ends the round has nothing in flight:
  no job of it is cancelled, and its next draw serves the next round; every other
  worker's in-flight job is cancelled (its draw spent) and it starts round r + 1 with its
  next draw. A job is in flight when it started before T_(r+1): a worker whose counted
  completion ties with T_(r+1) has nothing in flight either (its next job would start at
  T_(r+1)), so that draw also serves the next round.

  Returns (the rounds' end times T_(r+1), jobs cancelled per round, draws spent per
  worker). A trace may hold just the draws spent: a draw past its end reads +inf.
  """
  n, rows = batch_times.shape
  nxt = [0] * n  # each worker's next draw

  def draw(i):
    x = batch_times[i, nxt[i]] if nxt[i] < rows else np.inf
    nxt[i] += 1
    return x

  start, ends, cancelled = 0.0, [], []
  for _ in range(num_rounds):
    heap = [(start + draw(i), start, i) for i in range(n)]  # (completion, job start, worker)
    heapq.heapify(heap)
    for _ in range(num_gradients):
      done, _, i = heapq.heappop(heap)
      heapq.heappush(heap, (done + draw(i), done, i))  # i's next job starts at once
    end = done
    count = 0
    for _, began, i in heap:  # every worker has one job left in the heap
      if began < end:
        count += 1  # in flight: cancelled, its draw spent
      else:
        nxt[i] -= 1  # not started: the draw serves the next round
    start = end
    ends.append(end)
    cancelled.append(count)
  return np.asarray(ends), np.asarray(cancelled), np.asarray(nxt)
