"""Communication (docs/spec.md §8.1): each worker's link to the master, and the master's
ingress.

Worker i has a link of latency ℓ_i and bandwidth b_i (bytes per simulated time unit) for
pulling the parameters (master → worker) and pushing its message (worker → master). A
message of P values takes

    ℓ_i + q·ρ·P / b_i,

q bytes per value (``bytes_per_value``, 4 for float32) and ρ ∈ (0, 1] a compression ratio
that scales the bytes only. An asynchronous job of worker i is pull, compute, push: its
duration is their sum (the worker still reads the parameters at its dispatch, docs/spec.md
§1; only the times change). With ``master_bandwidth`` b_m the master receives one message at
a time, in arrival order, each taking q·ρ·P / b_m once the master is free: the apply time is
when its handling ends. A synchronous round adds the slowest participant's pull before and
push after its compute; ``collective="ring"`` replaces them by a ring all-reduce of

    2(G − 1)/G · q·ρ·P / min_i b_i + 2(G − 1) · max_i ℓ_i

over the round's G participants. Free links (the default) change nothing, bit for bit.

References:
  Patarasuk, Yuan, "Bandwidth optimal all-reduce algorithms for clusters of
  workstations", J. Parallel Distrib. Comput. 2009 (the ring all-reduce's cost).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import numpy as np

from dana_jax._checks import require as _require
from dana_jax.environment._values import check_per_worker, part_streams, per_worker
from dana_jax.specs import is_real

COLLECTIVES = ("slowest", "ring")
LINKS_TAG = 0x11A7


class LinkTimes(NamedTuple):
  """One run's links, resolved (docs/spec.md §8.1).

  Attributes:
    pull: [N], ℓ_i + q·ρ·P / b_i of the pull (master → worker).
    push: [N], the same for the push (worker → master).
    handling: the master's q·ρ·P / b_m per message (0.0: no master queue).
    queue: whether the master handles one message at a time.
    message_bytes: q·ρ·P.
    pull_latency, push_latency, pull_bandwidth, push_bandwidth: [N] each.
  """

  pull: np.ndarray
  push: np.ndarray
  handling: float
  queue: bool
  message_bytes: float
  pull_latency: np.ndarray
  push_latency: np.ndarray
  pull_bandwidth: np.ndarray
  push_bandwidth: np.ndarray

  def ring_time(self, participants) -> float:
    """A ring all-reduce over ``participants`` (worker ids): 2(G−1)/G · qρP / min b + 2(G−1)
    · max ℓ, min and max over the participants' push links (docs/spec.md §8.1)."""
    ids = np.asarray(participants, np.int64)
    g = ids.size
    if g <= 1:
      return 0.0
    bandwidth = float(np.min(self.push_bandwidth[ids]))
    latency = float(np.max(self.push_latency[ids]))
    transfer = 0.0 if math.isinf(bandwidth) else self.message_bytes / bandwidth
    return 2.0 * (g - 1) / g * transfer + 2.0 * (g - 1) * latency


@dataclasses.dataclass(frozen=True)
class Links:
  """Every worker's link to the master (docs/spec.md §8.1); free by default.

  ``latency`` ℓ and ``bandwidth`` b (bytes per time unit; ``inf``: no transfer time) apply to
  both directions unless ``pull_latency``/``pull_bandwidth`` or ``push_latency``/
  ``push_bandwidth`` set one; each is a number or one value per worker. ``bandwidth_shape``:
  the bandwidths are drawn once per run, b_i ~ Gamma(shape, b / shape) (mean b), like
  persistent speeds. ``bytes_per_value``: q. ``compression``: ρ ∈ (0, 1], scales the bytes.
  ``master_bandwidth``: b_m of a master that receives one message at a time (None: no
  queue). ``collective``: how a synchronous round communicates: ``"slowest"`` (the slowest
  participant's pull and push) or ``"ring"`` (a ring all-reduce).
  """

  arguments: ClassVar[dict[str, str]] = {
      "latency": "ℓ of pull and push, a time (number or one per worker)",
      "bandwidth": "b of pull and push, bytes per time unit; inf: no transfer time",
      "pull_latency": "ℓ of the pull only (None: latency)",
      "pull_bandwidth": "b of the pull only (None: bandwidth)",
      "push_latency": "ℓ of the push only (None: latency)",
      "push_bandwidth": "b of the push only (None: bandwidth)",
      "bytes_per_value": "q, bytes per parameter value",
      "compression": "ρ ∈ (0, 1], scales a message's bytes",
      "bandwidth_shape": "draw b_i ~ Gamma(shape, b/shape) once per run (None: as given)",
      "master_bandwidth": "b_m of a master receiving one message at a time (None: no queue)",
      "collective": "a synchronous round's communication: 'slowest' or 'ring'",
  }

  latency: Any = 0.0
  bandwidth: Any = math.inf
  pull_latency: Any = None
  pull_bandwidth: Any = None
  push_latency: Any = None
  push_bandwidth: Any = None
  bytes_per_value: float = 4.0
  compression: float = 1.0
  bandwidth_shape: float | None = None
  master_bandwidth: float | None = None
  collective: str = "slowest"

  def __post_init__(self):
    for name in ("latency", "pull_latency", "push_latency"):
      value = getattr(self, name)
      if value is not None or name == "latency":
        check_per_worker(f"environment.links.{name}", value,
                         meaning="a time in simulated units")
    for name in ("bandwidth", "pull_bandwidth", "push_bandwidth"):
      value = getattr(self, name)
      if value is not None or name == "bandwidth":
        check_per_worker(f"environment.links.{name}", value, low_open=True, infinite=True,
                         meaning="bytes per simulated time unit; inf: no transfer time")
    _require(is_real(self.bytes_per_value) and self.bytes_per_value > 0,
             "environment.links.bytes_per_value", self.bytes_per_value,
             "need a number > 0 (bytes per parameter value, 4 for float32)")
    _require(is_real(self.compression) and 0 < self.compression <= 1,
             "environment.links.compression", self.compression,
             "need a ratio in (0, 1] (scales the bytes of a message)")
    _require(self.bandwidth_shape is None or (is_real(self.bandwidth_shape)
                                              and self.bandwidth_shape > 0),
             "environment.links.bandwidth_shape", self.bandwidth_shape,
             "need a gamma shape > 0, or None (bandwidths as given)")
    _require(self.master_bandwidth is None or (
        isinstance(self.master_bandwidth, (int, float)) and not isinstance(
            self.master_bandwidth, bool) and self.master_bandwidth > 0),
             "environment.links.master_bandwidth", self.master_bandwidth,
             "need bytes per time unit > 0, or None (no master queue)")
    _require(self.collective in COLLECTIVES, "environment.links.collective", self.collective,
             f"choose one of {COLLECTIVES}")

  @property
  def is_free(self) -> bool:
    """No latency, no transfer time and no master queue: communication costs nothing."""
    latencies = [self.latency, self.pull_latency, self.push_latency]
    bandwidths = [self.bandwidth, self.pull_bandwidth, self.push_bandwidth]
    return (all(v is None or np.all(np.asarray(v, float) == 0) for v in latencies)
            and all(v is None or np.all(np.isinf(np.asarray(v, float))) for v in bandwidths)
            and self.master_bandwidth is None)

  def validate(self, num_workers: int) -> None:
    """Refuses per-worker lists that do not have ``num_workers`` entries."""
    self.times(num_workers, 1, 0)

  def times(self, num_workers: int, num_params: int, seed: int) -> LinkTimes:
    """The run's link times for a model of ``num_params`` values and environment seed
    ``seed`` (which draws the bandwidths when ``bandwidth_shape`` is set)."""
    n = int(num_workers)
    field = "environment.links"
    latency = per_worker(f"{field}.latency", self.latency, n)
    bandwidth = per_worker(f"{field}.bandwidth", self.bandwidth, n)
    pull_l = latency if self.pull_latency is None else per_worker(
        f"{field}.pull_latency", self.pull_latency, n)
    push_l = latency if self.push_latency is None else per_worker(
        f"{field}.push_latency", self.push_latency, n)
    pull_b = bandwidth if self.pull_bandwidth is None else per_worker(
        f"{field}.pull_bandwidth", self.pull_bandwidth, n)
    push_b = bandwidth if self.push_bandwidth is None else per_worker(
        f"{field}.push_bandwidth", self.push_bandwidth, n)
    if self.bandwidth_shape is not None:
      # One draw per worker, from the links' own streams; the same factor scales both
      # directions, so a worker's link is slow or fast as a whole.
      k = float(self.bandwidth_shape)
      factor = np.array([s.gamma(k, 1.0 / k) for s in part_streams(seed, LINKS_TAG, n)])
      pull_b, push_b = pull_b * factor, push_b * factor
    message = float(self.bytes_per_value) * float(self.compression) * float(num_params)

    def transfer(bw):
      with np.errstate(divide="ignore"):
        return np.where(np.isinf(bw), 0.0, message / bw)

    handling = 0.0 if self.master_bandwidth is None else message / float(
        self.master_bandwidth)
    return LinkTimes(pull=pull_l + transfer(pull_b), push=push_l + transfer(push_b),
                     handling=float(handling), queue=self.master_bandwidth is not None,
                     message_bytes=message, pull_latency=pull_l, push_latency=push_l,
                     pull_bandwidth=pull_b, push_bandwidth=push_b)
