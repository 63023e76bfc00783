"""Config fields every experiment shares: the timing model, the simulator, devices, processes.

A library component a sweep configures is a sub-dict whose keys are its
constructor's keyword arguments (big_vision's ``config.model = dict(...)``):

``timing``: ``dict(name=NAME, **arguments)`` builds
``dana_jax.timing.make_timing(NAME, **arguments)``: ``homogeneous`` and
``heterogeneous`` (the GA paper's; ``mean``, ``shape``, ``worker_speed_shape``),
``gamma`` (``shape``, ``scale``, ``worker_speed_shape``), ``constant``
(``batch_time``) and ``trace`` (``batch_times``: a ``.npy`` file of batch times
[num_workers, jobs], a measured cluster say, whose rows must equal every N of the
sweep). ``worker_speed_shape``: persistent worker speeds — each worker's mean
batch time is drawn once from Gamma(shape, mean / shape) (2.0: a CV of 0.71
between machines); None: identical workers. E.g.
``--config.timing.name=heterogeneous --config.timing.worker_speed_shape=2``.

``environment``: the run's environment beyond compute times (docs/spec.md §8), one
group per part whose keys are the part's arguments
(``dana_jax.environment.make_environment``): ``links`` (``latency``, ``bandwidth``,
``master_bandwidth``, ``compression``, …), ``availability`` (``name`` ``up_down`` with
``mtbf``, ``mttr``; ``trace``), ``speed`` (``straggler_chain``, ``steps``) and
``placement``; empty groups are the defaults (free links, always up, constant speeds,
one global stream), so a run without them is the run of §1–§7. The compute part is
``timing`` above. E.g. ``--config.environment.links.bandwidth=1e5
--config.environment.availability.name=up_down --config.environment.availability.mtbf=20000``.

``simulator``: ``dana_jax.Simulator``'s execution options, passed as
``**config.simulator``: ``execution`` (``steps``, ``blocks`` or ``auto``),
``block_size`` (K of ``blocks``, capped at each point's N; None: N) and
``replica_execution``, how a point's seeds and grid cells share one compiled
program: ``vmap`` batches them, ``loop`` runs them one after another (each seed
then equals its run alone, bitwise), ``auto`` is loop on CPU and vmap on GPU/TPU
(``dana_jax.default_replica_execution``; docs/benchmarks.md, "Replicas").
``--help`` lists every keyword each takes, read from the component.

``options_by_algorithm``: ``{algorithm: {option: value}}`` on top of
``algorithm_options`` (which every algorithm of the sweep gets); a value
``"<a>*N"`` is max(1, round(a · N)) at each N (e.g. m-sync's
``num_gradients="0.9*N"``); the keys ``learning_rate`` and ``momentum``
override the sweep's for that algorithm.

``mesh.replicas`` × ``mesh.workers`` devices (``dana_jax.make_mesh``): seeds and
grid cells are split over ``mesh.replicas`` (padded with repeats of the last
replica to a multiple of it; the repeats are not written); each block's
gradients over ``mesh.workers`` (needs ``simulator.execution="blocks"``).

``checkpoint_every_epochs``: a run saves its whole state (orbax) into
``<run>/checkpoint`` at the first chunk end after every so many epochs; the
same command resumes an interrupted run from there, and the directory is
removed when the run's summary is written. 0: no checkpoints.
``save_final_params``: write ``final_params.npz`` (one array per parameter,
seeds on the first axis) next to each summary.

``rerun_changed``: a sweep that finds runs of its points written with another
fingerprint (any field that changes a run's numbers, its data or the dana_jax
version differs) refuses, listing the fields; with ``rerun_changed=True`` it
deletes those runs and runs their points again (``experiments.rundir``).

``host_devices`` > 0 asks XLA:CPU for that many host devices (sets
``XLA_FLAGS=--xla_force_host_platform_device_count`` before jax starts).
Measured on 2 cores (docs/benchmarks.md): the Fashion-MNIST CNN at N = 16 runs
13.0–13.5 ms per master step with ``host_devices=2, mesh.workers=2,
simulator.execution="blocks", simulator.block_size=2`` against 14.7–15.4 ms
with the default ``execution="steps"`` on one device.

``distributed.initialize`` calls ``jax.distributed.initialize`` first (TPU
VM slices and most clusters need no other field; elsewhere give the
coordinator's ``host:port``, the number of processes and this process's id).
Every process runs the same command; only process 0 writes results.
"""

import ml_collections


def add_common_fields(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  # Per-algorithm options (values may be "<a>*N": max(1, round(a·N))), and per-algorithm
  # learning_rate / momentum overriding the sweep's for that algorithm.
  config.options_by_algorithm = ml_collections.ConfigDict()
  # Options every algorithm of the sweep gets (e.g. GA's penalty, a base): set one per flag,
  # --config.algorithm_options.NAME=VALUE.
  config.algorithm_options = ml_collections.ConfigDict()
  # dana_jax.Simulator's execution options, passed as **config.simulator: how master steps
  # run (auto, steps, blocks), K of blocks (None: N), how a point's seeds share its program.
  config.simulator = ml_collections.ConfigDict(
      {"execution": "auto", "block_size": None, "replica_execution": "auto"})
  # The run's environment beyond compute times (docs/spec.md §8): one group per part, each
  # the part's arguments (links: latency, bandwidth, master_bandwidth, …; availability,
  # speed, placement: name and arguments). Empty: the part's default (free links, always
  # up, constant speeds, one global stream). The compute part is config.timing.
  config.environment = ml_collections.ConfigDict(
      {"links": {}, "availability": {}, "speed": {}, "placement": {}})
  config.tensorboard = False  # also TensorBoard event files (the optional tensorboardX)
  config.chunk_steps = ml_collections.FieldReference(None, field_type=int)  # None: an epoch
  config.eval_every_epochs = ml_collections.FieldReference(None, field_type=float)  # None: chunks
  config.checkpoint_every_epochs = 1.0  # 0: no checkpoints
  config.save_final_params = True
  config.rerun_changed = False  # True: re-run the points whose runs have another fingerprint
  config.mesh = ml_collections.ConfigDict({"replicas": 1, "workers": 1})
  config.host_devices = 0
  config.distributed = ml_collections.ConfigDict({
      "initialize": False, "coordinator_address": "", "num_processes": 0, "process_id": -1})
  return config


MODERN_ALGORITHMS = ("ga", "dana_ga", "delay_adaptive", "ringmaster", "msync", "rennala",
                     "async_local_sgd", "ssgd")


def set_modern(config: ml_collections.ConfigDict, heterogeneous: bool):
  """The 2026 comparison (spec §6): GA and DANA-GA against the methods after them.

  Same η, γ, λ and learning-rate schedule as the experiment's main sweep for
  every method (no per-method tuning), except asynchronous local SGD, whose
  master applies pseudo-gradients of an AdamW inner loop and so uses the
  DiLoCo outer settings. The methods' own options, from their papers:

  * ``ringmaster``: ``max_delay`` R = N (a job is cancelled once N master
    steps stale — more than a homogeneous worker's typical delay N − 1);
    γ = 0, their method exactly (spec §6.2). With the sweep's γ = 0.9 it is
    heavy-ball ASGD below delay R, which fails on digits at every N like
    ASGD (measured: results/README.md).
  * ``msync``: ``num_gradients`` m = round(0.9 N) (N − m backup workers; Chen
    et al. 2016 ran about 4–5% backups; at N = 4 this is m = 4, SSGD).
  * ``rennala``: ``num_gradients`` S = N (the same gradients per round as
    SSGD, but fast workers may contribute several).
  * ``async_local_sgd``: H = 4 local steps of AdamW (lr 1e-3, b1 0.9,
    b2 0.999, decoupled λ_in = the sweep's weight decay) per job;
    delayed-Nesterov outer rule (buffer b = N, activation 0) with DiLoCo's
    outer η = 0.7 and γ = 0.9 (Douillard et al. 2023; Liu et al. 2024), under
    the same warm-up and decays.
  * ``delay_adaptive``: γ = 0, their method exactly (spec §6.1); with
    γ = 0.9 it is NAG-ASGD for τ ≤ N and fails like it (measured).
  * ``ga``, ``dana_ga``, ``ssgd``: no options (the defaults of docs/spec.md).

  ``heterogeneous``: gamma shape 4 (CV 0.5) per batch and persistent worker
  speeds (``timing.worker_speed_shape`` 2: each worker's mean batch time drawn once,
  CV 0.71), so some workers are slow for the whole run; otherwise the GA
  paper's homogeneous environment.
  """
  config.algorithms = MODERN_ALGORITHMS
  config.baseline = "sgd"
  config.num_workers = (4, 8, 16, 32)
  config.seeds = (0, 1, 2)
  config.options_by_algorithm = ml_collections.ConfigDict({
      "ringmaster": {"max_delay": "1*N", "momentum": 0.0},
      "delay_adaptive": {"momentum": 0.0},
      "msync": {"num_gradients": "0.9*N"},
      "rennala": {"num_gradients": "1*N"},
      "async_local_sgd": {"local_steps": 4, "inner": "adamw", "inner_learning_rate": 1e-3,
                          "outer": "delayed_nesterov", "learning_rate": 0.7,
                          "momentum": 0.9},
  })
  if heterogeneous:
    config.timing = ml_collections.ConfigDict({"name": "heterogeneous",
                                               "worker_speed_shape": 2.0})
  return config
