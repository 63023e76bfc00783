"""Config fields every experiment shares: a timing trace, devices, meshes, processes.

``timing_trace``: with ``timing="trace"``, a ``.npy`` file of batch times
[num_workers, jobs] (a measured cluster, say); every N of the sweep must
equal its number of rows.

``mesh.replicas`` × ``mesh.workers`` devices (``dana_jax.make_mesh``): seeds and
grid cells are split over ``mesh.replicas`` (padded with repeats of the last
replica to a multiple of it; the repeats are not written); each block's
gradients over ``mesh.workers`` (needs ``execution="blocks"``).

``checkpoint_every_epochs``: a run saves its whole state (orbax) into
``<run>/checkpoint`` at the first chunk end after every so many epochs; the
same command resumes an interrupted run from there, and the directory is
removed when the run's summary is written. 0: no checkpoints.
``save_final_params``: write ``final_params.npz`` (one array per parameter,
seeds on the first axis) next to each summary.

``host_devices`` > 0 asks XLA:CPU for that many host devices (sets
``XLA_FLAGS=--xla_force_host_platform_device_count`` before jax starts).
Measured on 2 cores (docs/benchmarks.md): the Fashion-MNIST CNN at N = 16 runs
13.0–13.5 ms per master step with ``host_devices=2, mesh.workers=2,
execution="blocks", block_size=2`` against 14.7–15.4 ms with the default
``execution="steps"`` on one device.

``distributed.initialize`` calls ``jax.distributed.initialize`` first (TPU
VM slices and most clusters need no other field; elsewhere give the
coordinator's ``host:port``, the number of processes and this process's id).
Every process runs the same command; only process 0 writes results.
"""

import ml_collections


def add_common_fields(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  config.timing_trace = ""
  config.block_size = ml_collections.FieldReference(None, field_type=int)  # K; None: N
  config.chunk_steps = ml_collections.FieldReference(None, field_type=int)  # None: an epoch
  config.eval_every_epochs = ml_collections.FieldReference(None, field_type=float)  # None: chunks
  config.checkpoint_every_epochs = 1.0  # 0: no checkpoints
  config.save_final_params = True
  config.mesh = ml_collections.ConfigDict({"replicas": 1, "workers": 1})
  config.host_devices = 0
  config.distributed = ml_collections.ConfigDict({
      "initialize": False, "coordinator_address": "", "num_processes": 0, "process_id": -1})
  return config
