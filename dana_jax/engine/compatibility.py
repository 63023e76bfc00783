"""Checks of a data set against its model, before anything is compiled or run.

A data or model mistake otherwise surfaces late and disguised: NaN inputs make
the first loss NaN and the run is reported as diverged; a label outside
[0, C) goes into ``optax.softmax_cross_entropy_with_integer_labels``, which
does not check it, and trains with a finite, wrong loss; a model with fewer
outputs than classes does the same. Each check here fails at once with one
line, a :class:`~dana_jax.errors.ConfigError` ``field=value is not allowed:
what is allowed.``

What is checked, on arrays (a :class:`~dana_jax.engine.host_data.HostData` is
skipped: its examples are only read batch by batch):

* inputs: finite (a float array's min and max, one pass each, no copy);
* the model applies to one example (``jax.eval_shape``: traced, not run) and,
  for a classification model (``Model.metrics`` None) or when ``num_classes``
  is given, its output width is the number of classes and each label is an
  integer of the shape of one output row, in [0, C);
* evaluation data (:func:`check_eval`): examples of the shape the model is
  trained on (after augmentation), the same checks of its labels.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dana_jax.engine.core import Model
from dana_jax.engine.host_data import HostData
from dana_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Problem:
  """One mistake: the argument (``field``), the value found and what is allowed;
  ``subject`` says it in words (``train labels``) for a caller that renames fields."""

  field: str
  value: object
  allowed: str
  subject: str

  @property
  def shown(self) -> str:
    """The value as the message shows it (a description such as ``shape (3,)`` as is)."""
    return self.value if isinstance(self.value, str) else repr(self.value)

  @property
  def message(self) -> str:
    return f"{self.field}={self.shown} is not allowed: {self.allowed}."


def _first_line(e: BaseException) -> str:
  return (str(e).strip().splitlines() or [""])[0][:200]


def _min_max(x):
  """(min, max) of an array as Python numbers: numpy on host arrays, jax on device ones."""
  xp = np if isinstance(x, np.ndarray) else jnp
  return xp.min(x).item(), xp.max(x).item()


def _example_spec(inputs, augment=None):
  """The abstract shape and dtype of one example as the model sees it (after ``augment``)."""
  spec = jax.ShapeDtypeStruct((1,) + tuple(np.shape(inputs)[1:]), inputs.dtype)
  if augment is not None:
    spec = jax.eval_shape(augment, spec, jax.random.key(0))
  return spec


def output_spec(model: Model, example):
  """The abstract output of ``model.predict`` on ``example`` (a ShapeDtypeStruct of one
  example, with its batch axis); raises whatever tracing the model raises."""
  params, model_state = jax.eval_shape(model.init, jax.random.key(0))
  return jax.eval_shape(model.predict, params, model_state, example)


def find_problem(model: Model | None, inputs, labels, *, num_classes: int | None = None,
                 what: str = "train", augment=None, example_shape=None) -> Problem | None:
  """The first mistake in ``(inputs, labels)`` for ``model``, or None (see the module).

  Args:
    model: the engine model, or None to check the data alone.
    inputs, labels: arrays with a leading example axis (a HostData: not checked).
    num_classes: C, when the caller knows it; otherwise a classification model's
      output width.
    what: the data's name in messages (``train``: ``train_inputs``, ``train_labels``).
    augment: ``(inputs, key) -> inputs`` applied to training batches (its output is
      what the model sees).
    example_shape: the shape one example must have (evaluation data: the training
      examples'), or None.
  """
  if isinstance(inputs, HostData) or inputs is None:
    return None
  x_field, y_field = f"{what}_inputs", f"{what}_labels"
  if np.ndim(inputs) < 1 or np.shape(inputs)[0] < 1:
    return Problem(x_field, f"shape {tuple(np.shape(inputs))}", "need at least one example "
                   "on a leading axis", f"{what} inputs")
  n = np.shape(inputs)[0]
  if labels is None or np.ndim(labels) < 1 or np.shape(labels)[0] != n:
    return Problem(y_field, None if labels is None else f"shape {tuple(np.shape(labels))}",
                   f"need one label per example ({n})", f"{what} labels")
  if example_shape is not None and tuple(np.shape(inputs)[1:]) != tuple(example_shape):
    return Problem(x_field, f"examples of shape {tuple(np.shape(inputs)[1:])}",
                   f"need the shape the model is trained on, {tuple(example_shape)}",
                   f"{what} inputs")
  if jnp.issubdtype(inputs.dtype, jnp.inexact):
    low, high = _min_max(inputs)
    if not (np.isfinite(low) and np.isfinite(high)):
      flat = np.asarray(inputs).reshape(n, -1)
      bad = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
      value = float(flat[bad][~np.isfinite(flat[bad])][0])
      return Problem(x_field, value, f"need finite inputs (example {bad} has {value})",
                     f"{what} inputs")
  width, row = None, None
  if model is not None:
    try:
      out = output_spec(model, _example_spec(inputs, augment))
    except Exception as e:  # a model's tracing raises any kind
      return Problem(x_field, f"examples of shape {tuple(np.shape(inputs)[1:])}",
                     f"the model cannot be applied to one of them ({type(e).__name__}: "
                     f"{_first_line(e)})", f"{what} inputs")
    if isinstance(out, jax.ShapeDtypeStruct) and len(out.shape) >= 2:
      width, row = int(out.shape[-1]), tuple(out.shape[1:-1])
  classes = num_classes if num_classes is not None else (
      width if model is not None and model.metrics is None else None)
  if classes is None:
    return None
  if width is not None and width != classes:
    return Problem("model output width", width,
                   f"need one output per class, num_classes={classes}", "model output width")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    return Problem(y_field, f"dtype {labels.dtype}", f"need integer class labels in "
                   f"[0, {classes})", f"{what} labels")
  if row is not None and tuple(np.shape(labels)[1:]) != row:
    return Problem(y_field, f"shape {tuple(np.shape(labels))}", f"the model gives "
                   f"{classes} scores per label of shape {row}: need labels of shape "
                   f"{(n,) + row}",
                   f"{what} labels")
  low, high = _min_max(labels)
  if low < 0 or high >= classes:
    value = int(low if low < 0 else high)
    return Problem(y_field, value, f"need class labels in [0, {classes})"
                   + (f" (the model has {classes} outputs)" if num_classes is None else ""),
                   f"{what} labels")
  return None


def check_data(model: Model | None, inputs, labels, *, num_classes: int | None = None,
               what: str = "train", augment=None, example_shape=None) -> None:
  """Raises :class:`~dana_jax.errors.ConfigError` for the first mistake of
  :func:`find_problem`, in one line."""
  problem = find_problem(model, inputs, labels, num_classes=num_classes, what=what,
                         augment=augment, example_shape=example_shape)
  if problem is not None:
    raise ConfigError(problem.message)


def check_eval(simulator, eval_data=None, train_eval_data=None) -> None:
  """Checks :func:`~dana_jax.simulate`'s evaluation sets against the simulator: pairs
  ``(inputs, labels)`` or HostData, with examples of the shape its model is trained on."""
  for data, what in ((eval_data, "eval_data"), (train_eval_data, "train_eval_data")):
    if data is None or isinstance(data, HostData):
      continue
    if not isinstance(data, (tuple, list)) or len(data) != 2:
      raise ConfigError(f"{what}={type(data).__name__} is not allowed: need (inputs, labels) "
                        "arrays or a HostData.")
    shape = None
    if simulator.host_data is None:
      shape = _example_spec(simulator.train_inputs, simulator.augment).shape[1:]
    check_data(simulator.model, *data, what=what.removesuffix("_data"),
               example_shape=shape)
