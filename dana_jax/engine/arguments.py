"""The public API's argument checks: a value of the wrong type or out of range is one
:class:`~dana_jax.errors.ConfigError` line naming the argument, never an exception from
deep inside (``'list' object has no attribute ...``).

Each function checks what its entry point receives before anything is built; the
values' own rules (an option's range, a timing field) are checked where they are
defined (:mod:`dana_jax.specs`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
import numpy as np

from dana_jax._checks import is_int
from dana_jax._checks import require as _require
from dana_jax.engine.core import Hyperparams, SimState
from dana_jax.engine.host_data import HostData
from dana_jax.errors import ConfigError


def type_name(value) -> str:
  return type(value).__name__


def is_model(model) -> bool:
  """A :class:`~dana_jax.engine.Model` or anything with its four callables."""
  return all(callable(getattr(model, name, None)) for name in ("init", "loss", "fold",
                                                               "predict"))


def check_model(model, field: str = "model") -> None:
  _require(is_model(model), field, type_name(model),
           "need a dana_jax.Model (init, loss, fold, predict), e.g. "
           "dana_jax.flax_model(module, input_shape)")


def _check_callable(field: str, value, what: str) -> None:
  _require(value is None or callable(value), field, type_name(value),
           f"need {what} (a callable) or None")


def _leading(field: str, value) -> int:
  """The length of an array's first axis; refuses what is not an array of ≥ 1 axis."""
  try:
    shape = np.shape(value)
  except (TypeError, ValueError):
    shape = None
  if (shape is None or len(shape) == 0 or isinstance(value, (str, bytes, Mapping))
      or not hasattr(value, "dtype")):  # a list: np.asarray(x) says which dtype is meant
    raise ConfigError(f"{field}={type_name(value)} is not allowed: need an array (numpy or "
                      "jax) with a leading example axis.")
  return int(shape[0])


def check_data(field: str, inputs, labels, labels_field: str | None = None) -> None:
  """``inputs, labels``: arrays of one leading length, or a HostData and no labels."""
  labels_field = labels_field or f"{field}_labels"
  if isinstance(inputs, HostData):
    _require(labels is None, labels_field, type_name(labels),
             "must be None when the inputs are a HostData (it returns the labels)")
    return
  num = _leading(field, inputs)
  _require(labels is not None, labels_field, None,
           "need one label per example (or the inputs as a dana_jax.HostData)")
  _require(_leading(labels_field, labels) == num, labels_field, np.shape(labels),
           f"need one label per example ({num})")


def _int_list(field: str, values, allow_int: bool) -> list[int]:
  if allow_int and is_int(values):
    return [int(values)]
  ok = (not isinstance(values, (str, bytes, Mapping)) and np.iterable(values)
        and all(is_int(v) for v in values))
  _require(ok, field, values, "need an integer" + (" or a sequence of integers"
                                                   if allow_int else " sequence"))
  return [int(v) for v in values]


def check_hyperparams_type(hyperparams) -> None:
  """A :class:`Hyperparams` whose fields are numbers (or one number per replica)."""
  if hyperparams is None:
    return
  _require(isinstance(hyperparams, Hyperparams), "hyperparams", type_name(hyperparams),
           "need a dana_jax.Hyperparams(learning_rate, momentum, weight_decay) or None")
  for name in ("learning_rate", "momentum", "weight_decay"):
    value = getattr(hyperparams, name)
    try:
      ok = np.asarray(value, dtype=np.float64).ndim <= 1 and not isinstance(value, (str,
                                                                                     bytes))
    except (TypeError, ValueError):
      ok = False
    _require(ok, f"hyperparams.{name}", value,
             "need a number or a list of numbers (one per replica)")


def check_run_spec(algorithm, *, algorithm_options, seeds, timing_seeds, worker_program,
                   restart_rule, round_rule) -> None:
  """:meth:`~dana_jax.RunSpec.create`'s arguments by type, before any of them is used."""
  from dana_jax.algorithms import Algorithm

  _require(isinstance(algorithm, (str, Algorithm)), "algorithm", type_name(algorithm),
           "need a registry name (dana_jax.ALGORITHMS) or a dana_jax.Algorithm")
  _require(algorithm_options is None or isinstance(algorithm_options, Mapping),
           "algorithm_options", algorithm_options, "need a dict of option names to values "
           "or None")
  _int_list("seeds", seeds, allow_int=True)
  if timing_seeds is not None:
    _int_list("timing_seeds", timing_seeds, allow_int=False)
  _require(worker_program is None or (callable(getattr(worker_program, "run", None))
                                      and callable(getattr(worker_program, "init", None))),
           "worker_program", type_name(worker_program),
           "need a worker program (dana_jax.workers: Gradient, LocalSteps) or None")
  _check_callable("restart_rule", restart_rule, "(step_count, read_step) -> bool [N]")
  _require(round_rule is None or (callable(getattr(round_rule, "gradients", None))
                                  and callable(getattr(round_rule, "durations", None))),
           "round_rule", type_name(round_rule),
           "need a round rule (gradients, durations; dana_jax.schedule.rounds) or None")


def check_simulator(model, train_inputs, train_labels, *, hyperparams, learning_rate_schedule,
                    augment) -> None:
  """The Simulator's own arguments (those of its :class:`~dana_jax.RunSpec` aside) by type,
  before any of them is used."""
  from dana_jax.learning_rates import InEpochs

  if model is not None:  # None: a simulator that only checks its other arguments
    check_model(model)
  check_data("train_inputs", train_inputs, train_labels, "train_labels")
  check_hyperparams_type(hyperparams)
  _require(learning_rate_schedule is None or isinstance(learning_rate_schedule, InEpochs)
           or callable(learning_rate_schedule), "learning_rate_schedule",
           type_name(learning_rate_schedule),
           "need base_lr -> (step -> lr), a dana_jax.InEpochs, or None")
  _check_callable("augment", augment, "(inputs, key) -> inputs")


def check_simulate(*, eval_data, train_eval_data, callback, progress, state,
                   checkpoint_dir, checkpoint_meta) -> None:
  """:func:`~dana_jax.simulate`'s arguments by type (its step counts: there; that
  ``simulator`` is one: :func:`~dana_jax.simulate` itself)."""
  for field, data in (("eval_data", eval_data), ("train_eval_data", train_eval_data)):
    if data is None or isinstance(data, HostData):
      continue
    _require(isinstance(data, (tuple, list)) and len(data) == 2, field, type_name(data),
             "need (inputs, labels), a dana_jax.HostData, or None")
    check_data(field, data[0], data[1], f"{field}[1]")
  _check_callable("callback", callback, "record -> None")
  _require(isinstance(progress, (bool, np.bool_)), "progress", progress, "need True or False")
  _require(state is None or isinstance(state, SimState), "state", type_name(state),
           "need a dana_jax.SimState (simulator.init(), or a Result's state) or None")
  _require(checkpoint_dir is None or isinstance(checkpoint_dir, (str, os.PathLike)),
           "checkpoint_dir", type_name(checkpoint_dir), "need a path or None")
  _require(checkpoint_meta is None or isinstance(checkpoint_meta, Mapping),
           "checkpoint_meta", type_name(checkpoint_meta), "need a dict or None")


def _leaf_shapes(tree) -> list | None:
  """(path, shape) of every array leaf of ``tree`` (container types aside: a dict and a
  FrozenDict of the same arrays agree), or None if a leaf is not an array."""
  try:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  except Exception:  # a tree that cannot be flattened is no tree of weights
    return None
  out = []
  for path, leaf in leaves:
    if not hasattr(leaf, "shape"):
      return None
    out.append((jax.tree_util.keystr(path), tuple(leaf.shape)))
  return out


def check_weights(model, params, model_state) -> None:
  """``params`` and ``model_state`` of one θ: the trees ``model.init`` gives (the same
  paths and shapes), not, say, None, a replica stack or another model's weights."""
  try:
    want = jax.eval_shape(model.init, jax.random.key(0))
  except Exception:  # a model that cannot be initialised fails on its own
    return
  for field, got, expected in (("params", params, want[0]), ("model_state", model_state,
                                                             want[1])):
    shapes, expected_shapes = _leaf_shapes(got), _leaf_shapes(expected)
    if expected_shapes is None or shapes == expected_shapes:
      continue
    if shapes is None:
      shown = type_name(got)
    elif {p for p, _ in shapes} == {p for p, _ in expected_shapes}:
      path, shape = next((p, s) for (p, s), (_, e) in zip(shapes, expected_shapes,
                                                           strict=True) if s != e)
      shown = f"<{path or 'array'} of shape {shape}>"
    else:
      shown = f"<a tree of {len(shapes)} arrays>"
    total = len(expected_shapes)
    raise ConfigError(f"{field}={shown} is not allowed: need the model's own "
                      f"{field} of one θ ({total} array(s) as model.init gives them, "
                      "e.g. result.state's for a run of one replica).")


def check_evaluate(model, inputs, labels, batch_size) -> None:
  """:func:`~dana_jax.evaluate`'s arguments."""
  check_model(model)
  check_data("inputs", inputs, labels, "labels")
  _require(is_int(batch_size, 1), "batch_size", batch_size, "need an integer ≥ 1")
