"""Data and model mistakes are refused before training, one line each, never "diverged".

Through the API (``dj.Simulator``, ``dj.simulate``, ``dj.evaluate``: ``dj.ConfigError``)
and through an experiment (``experiments.main.run``: ``error: ...`` and exit status 1,
no run directory written). The messages must name the field, the value found and what
is allowed; a correct data set and a model with its own metrics pass.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dana_jax as dj
from dana_jax import data, models, transformer
from dana_jax.engine import compatibility as checks

X, Y, VX, VY = data.digits()
MODEL = dj.flax_model(models.MLP((8,), 10), (8, 8))
THREE = dj.flax_model(models.MLP((8,), 3), (8, 8))  # 3 outputs for 10 classes
ARGS = dict(num_workers=2, batch_size=16)


def with_value(array, index, value):
  out = np.array(array, copy=True)
  out[index] = value
  return out


def one_line(error) -> str:
  message = str(error.value)
  assert "\n" not in message, message
  return message


# (name, model, inputs, labels, what the one line must contain)
TRAIN_MISTAKES = [
    ("label -1", MODEL, X, with_value(Y, 7, -1), ["train_labels=-1", "[0, 10)"]),
    ("label = C", MODEL, X, with_value(Y, 3, 10), ["train_labels=10", "[0, 10)"]),
    ("float labels", MODEL, X, Y.astype(np.float32),
     ["train_labels=dtype float32", "integer class labels"]),
    ("NaN input", MODEL, with_value(X, (5, 2, 3), np.nan), Y,
     ["train_inputs=nan", "finite inputs", "example 5"]),
    ("infinite input", MODEL, with_value(X, (11, 0, 0), -np.inf), Y,
     ["train_inputs=-inf", "example 11"]),
    ("3 outputs for 10 classes", THREE, X, Y,
     ["train_labels=9", "[0, 3)", "the model has 3 outputs"]),
    ("examples the model cannot take", MODEL, X[:, :6, :6], Y,
     ["train_inputs=examples of shape (6, 6)", "cannot be applied"]),
]


@pytest.mark.parametrize("name,model,inputs,labels,expected", TRAIN_MISTAKES,
                         ids=[m[0] for m in TRAIN_MISTAKES])
def test_training_data_mistakes_are_refused_by_the_simulator(name, model, inputs, labels,
                                                             expected):
  with pytest.raises(dj.ConfigError) as error:
    dj.Simulator(model, "ga", inputs, labels, **ARGS)
  message = one_line(error)
  assert message.endswith(".") and " is not allowed: " in message
  for part in expected:
    assert part in message, (name, message)


def test_correct_data_and_models_with_their_own_metrics_pass():
  dj.Simulator(MODEL, "ga", X, Y, **ARGS)
  dj.Simulator(MODEL, "ga", X.astype(np.float64), Y.astype(np.int64), **ARGS)
  checks.check_data(MODEL, X, Y, num_classes=10)
  # A regression model (its own loss and metrics): float targets, no class range.
  regression = dj.flax_model(models.MLP((8,), 1), (8, 8),
                                 loss=lambda out, y: (out[:, 0] - y) ** 2)
  dj.Simulator(regression, "ga", X, Y.astype(np.float32) * 3.5, **ARGS)
  # Labels at both ends of [0, C) are allowed.
  labels = with_value(with_value(Y, 0, 0), 1, 9)
  checks.check_data(MODEL, X, labels)


def test_the_model_width_against_a_given_number_of_classes():
  with pytest.raises(dj.ConfigError) as error:
    checks.check_data(THREE, X, Y % 3, num_classes=10)
  assert one_line(error) == ("model output width=3 is not allowed: need one output per "
                             "class, num_classes=10.")
  with pytest.raises(dj.ConfigError, match=r"train_labels=12 is not allowed: need class "
                                           r"labels in \[0, 12\)\.$"):
    checks.check_data(dj.flax_model(models.MLP((8,), 12), (8, 8)), X, with_value(Y, 0, 12),
                      num_classes=12)


def test_language_model_labels_are_checked_against_the_byte_classes():
  window = 8
  lm = transformer.language_model(transformer.DecoderLM(vocab_size=256, width=16, depth=1,
                                                        heads=2, max_len=window), window)
  tokens = np.arange(4 * window + 1) % 256
  tx, ty = data.windows(tokens, window)
  checks.check_data(lm, tx, ty, num_classes=256)  # fits
  with pytest.raises(dj.ConfigError, match=r"train_labels=300 is not allowed: need class "
                                           r"labels in \[0, 256\)"):
    checks.check_data(lm, tx, with_value(ty, (1, 2), 300), num_classes=256)
  with pytest.raises(dj.ConfigError, match=r"train_labels=shape \(4,\) is not allowed: .*"
                                           r"need labels of shape \(4, 8\)"):
    checks.check_data(lm, tx, ty[:, 0], num_classes=256)


EVAL_MISTAKES = [
    ("eval of another shape", dict(eval_data=(VX[:, :4], VY)),
     ["eval_inputs=examples of shape (4, 8)", "trained on, (8, 8)"]),
    ("eval label = C", dict(eval_data=(VX, with_value(VY, 4, 10))), ["eval_labels=10",
                                                                     "[0, 10)"]),
    ("train-eval label -1", dict(train_eval_data=(X, with_value(Y, 0, -1))),
     ["train_eval_labels=-1"]),
    ("eval NaN", dict(eval_data=(with_value(VX, (2, 1, 1), np.nan), VY)),
     ["eval_inputs=nan", "example 2"]),
    ("labels missing", dict(eval_data=(VX, VY[:-1])), ["eval_data[1]=(299,)",
                                                       "one label per example (300)"]),
    ("not a pair", dict(eval_data=VX), ["eval_data='ndarray'", "(inputs, labels)"]),
]


@pytest.mark.parametrize("name,kwargs,expected", EVAL_MISTAKES, ids=[m[0] for m in EVAL_MISTAKES])
def test_evaluation_data_mistakes_are_refused_before_the_first_step(name, kwargs, expected):
  sim = dj.Simulator(MODEL, "ga", X, Y, **ARGS)
  calls = []
  with pytest.raises(dj.ConfigError) as error:
    dj.simulate(sim, 2, progress=False, callback=calls.append, **kwargs)
  assert not calls  # refused before any chunk ran
  message = one_line(error)
  for part in expected:
    assert part in message, (name, message)


def test_evaluate_checks_its_data():
  params, state = MODEL.init(jax.random.key(0))
  with pytest.raises(dj.ConfigError, match=r"^eval_labels=10 is not allowed"):
    dj.evaluate(MODEL, params, state, VX, with_value(VY, 0, 10))
  metrics = dj.evaluate(MODEL, params, state, VX[:50], VY[:50])  # correct data passes
  logits = MODEL.predict(params, state, jnp.asarray(VX[:50]))
  np.testing.assert_allclose(metrics["error"], np.mean(np.argmax(logits, -1) != VY[:50]))


# --- through the experiment ------------------------------------------------------------

TINY = ["--config.algorithms=ga", "--config.num_workers=2", "--config.seeds=0",
        "--config.epochs=1", "--config.baseline="]

USER_MODELS = '''
import flax.linen as nn


class Net(nn.Module):
  width: int

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(self.width)(x.reshape((x.shape[0], -1)))


def three(num_classes):
  return Net(3)


def raises(num_classes):
  raise RuntimeError("no GPU kernel for this layer")


def two_arguments(num_classes, width):
  return Net(width)


def no_arguments():
  return Net(10)


def good(num_classes):
  return Net(num_classes)


class Total(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(10)(x.reshape((x.shape[0], -1))).sum(axis=-1)


def one_number(num_classes):
  return Total()
'''


@pytest.fixture
def user_models(tmp_path, monkeypatch):
  (tmp_path / "h2_user_models.py").write_text(USER_MODELS)
  monkeypatch.syspath_prepend(str(tmp_path))
  return "h2_user_models"


def experiment_error(name, argv, workdir) -> str:
  from experiments import main
  with pytest.raises(SystemExit) as stop:
    main.run(name, [*TINY, *argv, f"--workdir={workdir}"])
  message = str(stop.value.code)
  assert message.startswith("error: ") and "\n" not in message, message
  assert not workdir.exists()  # refused before any run directory was written
  return message


@pytest.mark.parametrize("factory,expected", [
    ("three", "config.model='h2_user_models:three' is not allowed: its output width is 3: "
              "need one output per class, 10 for digits"),
    ("raises", "config.model='h2_user_models:raises' is not allowed: building it for 10 "
               "classes raised RuntimeError: no GPU kernel for this layer"),
    ("two_arguments", "config.model='h2_user_models:two_arguments' is not allowed: a factory "
                      "is called with one argument, the number of classes, and its "
                      "signature is two_arguments(num_classes, width)"),
    ("no_arguments", "signature is no_arguments()"),
    ("one_number", "config.model='h2_user_models:one_number' is not allowed: its output for a "
                   "batch of 1 example is of shape (1,): need an array of shape (batch, …, 10)"),
])
def test_a_users_model_mistake_is_one_error_line(user_models, tmp_path, factory, expected):
  message = experiment_error("digits", [f"--config.model={user_models}:{factory}"],
                             tmp_path / "runs")
  assert expected in message, message


def _bad_dataset(kind):
  from experiments import train

  def load(config):
    real = train.Dataset(X, Y, (VX, VY), (X[:200], Y[:200]), 10, X.shape[1:])
    if kind == "nan":
      return real._replace(train_inputs=with_value(X, (3, 4, 4), np.nan))
    if kind == "label -1":
      return real._replace(train_labels=with_value(Y, 9, -1))
    if kind == "test label = C":
      return real._replace(eval_data=(VX, with_value(VY, 1, 10)))
    if kind == "test of another shape":
      return real._replace(eval_data=(VX[:, :, :7], VY))
    raise AssertionError(kind)
  return load


@pytest.mark.parametrize("kind,expected", [
    ("nan", "config.dataset='digits' is not allowed: train inputs nan: need finite inputs "
            "(example 3 has nan)"),
    ("label -1", "config.dataset='digits' is not allowed: train labels -1: need class labels "
                 "in [0, 10)"),
    ("test label = C", "config.dataset='digits' is not allowed: test labels 10: need class "
                       "labels in [0, 10)"),
    ("test of another shape", "config.dataset='digits' is not allowed: test inputs examples "
                              "of shape (8, 7): need the shape the model is trained on, "
                              "(8, 8)"),
])
def test_a_data_mistake_in_an_experiment_is_one_error_line(tmp_path, monkeypatch, kind,
                                                          expected):
  from experiments import sweep
  monkeypatch.setattr(sweep, "load_data", _bad_dataset(kind))
  message = experiment_error("digits", [], tmp_path / "runs")
  assert expected in message, message
  assert "diverged" not in message


def test_the_real_data_sets_pass_check_dataset(user_models):
  from experiments import preflight, train, validate
  from experiments.configs import digits
  config = digits.get_config()
  dataset = train.load_data(config)
  preflight.check_dataset(config, dataset)  # the built-in MLP
  config.model = f"{user_models}:good"
  preflight.check_dataset(config, dataset)
  config.model = f"{user_models}:three"
  with pytest.raises(validate.ConfigError, match="its output width is 3"):
    preflight.check_dataset(config, dataset)


def test_a_language_model_dataset_is_checked_against_256_byte_classes(tmp_path):
  from experiments import preflight, train, validate
  from experiments.configs import wikitext103
  for split in ("train", "valid", "test"):
    (tmp_path / f"wiki.{split}.tokens").write_text(" = Title = \n\n" + "some words. " * 300)
  config = wikitext103.get_config()
  config.data_dir = str(tmp_path)
  dataset = train.load_data(config)
  assert dataset.num_classes == 256
  preflight.check_dataset(config, dataset)
  vx, vy = dataset.eval_data
  bad = dataset._replace(eval_data=(vx, np.where(vy == ord("w"), 300, vy)))
  with pytest.raises(validate.ConfigError) as error:
    preflight.check_dataset(config, bad)
  assert one_line(error) == (f"config.data_dir='{tmp_path}' is not allowed: test labels 300: "
                             "need class labels in [0, 256).")
