"""Every option value, timing field, size and public API argument is checked where it is
given: one dj.ConfigError line naming the field, the value and what is allowed.

The option tests enumerate the registry (dj.ALGORITHMS) and the timing models, so an
option added without a declared check fails them. The bad values are made here from
the kind and bounds a spec declares, not by the spec's own check.
"""

import dataclasses
import functools
import inspect
import math
import re
import time
import tracemalloc

import jax
import numpy as np
import pytest

import dana_jax as dj
from dana_jax import models, specs
from dana_jax import schedule as S
from dana_jax import timing as T

X = np.zeros((64, 8, 8), np.float32)
Y = np.zeros(64, np.int32)
MODEL = dj.flax_model(models.MLP((4,)), (8, 8))


def bad_values(spec):
  """Values of every kind the spec refuses: wrong type, out of each bound, not finite."""
  if isinstance(spec, specs.Bool):
    return ["maybe", 1, 0, None, "True", 0.5]
  if isinstance(spec, specs.Int):
    out = [spec.minimum - 1, spec.minimum + 0.5, float(spec.minimum + 1), True, "3", [2]]
    if spec.maximum is not None:
      out.append(spec.maximum + 1)
    return out + ([] if spec.optional else [None])
  if isinstance(spec, specs.Real):
    out = [float("nan"), "0.5", True, [0.5]]
    if spec.low > -math.inf:
      out += [spec.low if spec.low_open else spec.low - 0.5, -math.inf]
    if spec.high < math.inf:
      out.append(spec.high if spec.high_open else spec.high + 0.5)
    if spec.high == math.inf:
      out.append(math.inf)  # not finite
    if not spec.schedule:
      out.append(lambda step: 0.1)
    return out + ([] if spec.optional else [None])
  if isinstance(spec, specs.Choice):
    choices = spec.choices()
    return ["nosuch", 3, True] + ([] if None in choices else [None]) + [
        str(choices[0]).upper()]
  raise AssertionError(f"a spec of unknown kind {spec!r}: teach bad_values about it")


def good_value(spec):
  """One value every spec of its kind must accept (inside its bounds)."""
  if isinstance(spec, specs.Bool):
    return np.bool_(True)
  if isinstance(spec, specs.Int):
    return np.int64(spec.minimum + 1) if spec.maximum is None else spec.maximum
  if isinstance(spec, specs.Real):
    lo = spec.low if spec.low > -math.inf else -1.0
    hi = spec.high if spec.high < math.inf else lo + 2.0
    return (lo + hi) / 2
  return spec.choices()[-1]


def allowed_words(spec) -> list[str]:
  """What the refusal must say is allowed, from the spec's declared parameters."""
  if isinstance(spec, specs.Bool):
    return ["True or False"]
  if isinstance(spec, specs.Int):
    return [f"integer in [{spec.minimum}, {spec.maximum}]" if spec.maximum is not None
            else f"integer ≥ {spec.minimum}"]
  if isinstance(spec, specs.Real):
    fmt = lambda x: str(int(x)) if float(x).is_integer() else repr(float(x))
    if spec.high == math.inf and spec.low > -math.inf:
      return [f"{'>' if spec.low_open else '≥'} {fmt(spec.low)}"]
    if spec.low > -math.inf:
      return [f"{'(' if spec.low_open else '['}{fmt(spec.low)}, {fmt(spec.high)}"
              f"{')' if spec.high_open else ']'}"]
    return ["real number"]
  return [repr(c) for c in spec.choices() if c is not None]


def option_cases():
  for name, algorithm in sorted(dj.ALGORITHMS.items()):
    for option, spec in sorted(algorithm.option_specs().items()):
      for value in bad_values(spec):
        yield pytest.param(name, option, value, id=f"{name}.{option}={value!r}")


def test_every_option_of_every_algorithm_declares_a_check():
  assert len(dj.ALGORITHMS) >= 15
  undeclared = {name: sorted(set(a.options()) - set(a.option_specs()))
                for name, a in dj.ALGORITHMS.items()}
  assert not any(undeclared.values()), f"options without a declared check: {undeclared}"
  for name, a in dj.ALGORITHMS.items():
    assert set(a.option_specs()) == set(a.options()), name
    assert all(isinstance(s, specs.Spec) for s in a.option_specs().values()), name


def test_the_defaults_and_good_values_pass_their_checks():
  for a in dj.ALGORITHMS.values():
    defaults = {}
    for fn in (a.build, a.plan):
      for p in inspect.signature(fn).parameters.values() if fn is not None else ():
        if p.kind == p.KEYWORD_ONLY:
          defaults[p.name] = p.default
    for option, spec in a.option_specs().items():
      if defaults[option] is not None or spec.optional:  # None, not optional: required
        a.check_options({option: defaults[option]})
      a.check_options({option: good_value(spec)})


@pytest.mark.parametrize("algorithm, option, value", list(option_cases()))
def test_a_bad_option_value_is_refused_naming_option_value_and_allowed(algorithm, option,
                                                                        value):
  spec = dj.ALGORITHMS[algorithm].option_specs()[option]
  with pytest.raises(dj.ConfigError) as info:
    dj.optimizer(algorithm, num_workers=4, **{option: value})
  message = str(info.value)
  assert "\n" not in message
  assert message.startswith(f"algorithm_options.{option}={value!r} is not allowed: "), message
  for word in allowed_words(spec):
    assert word in message, (word, message)


def test_the_issues_option_mistakes_and_an_unknown_name():
  for name, options, shown in [("ga", dict(per_tensor="maybe"), "per_tensor='maybe'"),
                               ("ga", dict(beta=2), "beta=2"), ("ga", dict(eps=-1), "eps=-1"),
                               ("dc_asgd", dict(variance_control="lots"),
                                "variance_control='lots'"),
                               ("ringmaster", dict(max_delay=0), "max_delay=0"),
                               ("async_local_sgd", dict(local_steps=2.0), "local_steps=2.0")]:
    with pytest.raises(dj.ConfigError, match=f"^algorithm_options.{shown} is not allowed"):
      dj.optimizer(name, **options)
  with pytest.raises(dj.ConfigError, match=r"algorithm_options=\['nosuch'\].*'penalty'"):
    dj.optimizer("ga", nosuch=1)


def test_a_bad_option_is_refused_before_the_model_is_touched():
  calls = []

  def init(key):
    calls.append(key)
    return MODEL.init(key)

  model = MODEL._replace(init=init)
  for name, options in [("ga", dict(per_tensor="maybe")), ("msync", dict(num_gradients=0)),
                        ("dc_asgd", dict(variance_control="lots"))]:
    with pytest.raises(dj.ConfigError, match="algorithm_options"):
      dj.Simulator(model, name, X, Y, num_workers=2, batch_size=8, algorithm_options=options)
  assert calls == []


def test_an_option_without_a_declared_check_is_refused():
  @specs.takes(known=specs.Bool())
  def build(learning_rate, momentum, weight_decay, num_workers, *, known=True, unchecked=1):
    return dj.optimizer("nag")

  algorithm = dj.Algorithm("custom", build)
  assert set(algorithm.options()) - set(algorithm.option_specs()) == {"unchecked"}
  with pytest.raises(dj.ConfigError, match="unchecked=2 is not allowed: .*declares no check"):
    algorithm.check_options({"unchecked": 2})


# --------------------------------------------------------------------------
# Timing fields.
# --------------------------------------------------------------------------

TIMING_FACTORIES = [T.homogeneous, T.heterogeneous]


SPEC_TIMING_CLASSES = (T.GammaTiming, T.ConstantTiming, T.LognormalTiming, T.ParetoTiming,
                       T.AlibabaTiming)


def timing_cases():
  for cls in SPEC_TIMING_CLASSES:
    for field, spec in sorted(cls.specs.items()):
      for value in bad_values(spec):
        yield pytest.param(lambda c=cls, f=field, v=value: c(**{f: v}), field, value,
                           id=f"{cls.__name__}.{field}={value!r}")
  for fn in TIMING_FACTORIES:
    for field, spec in sorted(specs.declared(fn).items()):
      for value in bad_values(spec):
        yield pytest.param(lambda fn=fn, f=field, v=value: fn(**{f: v}), field, value,
                           id=f"{fn.__name__}.{field}={value!r}")
        yield pytest.param(lambda n=fn.__name__, f=field, v=value: T.make_timing(n, **{f: v}),
                           field, value, id=f"make_timing({fn.__name__}).{field}={value!r}")


def test_every_timing_field_declares_a_check():
  # The Alibaba job's name is checked against the shipped jobs (its own test below).
  own_checks = {T.AlibabaTiming: {"job"}}
  for cls in SPEC_TIMING_CLASSES:
    names = {f.name for f in dataclasses.fields(cls)} - own_checks.get(cls, set())
    assert names == set(cls.specs), cls
  for fn in TIMING_FACTORIES:
    assert set(inspect.signature(fn).parameters) == set(specs.declared(fn)), fn
  # The registry's models: each of the above, or the trace (its array has its own test).
  assert set(T.TIMING_MODELS.values()) == {T.homogeneous, T.heterogeneous, T.TraceTiming,
                                           *SPEC_TIMING_CLASSES}


@pytest.mark.parametrize("job", ["job_0", "job_5", "JOB_1", ""])
def test_an_unknown_alibaba_job_is_one_line_naming_the_jobs(job):
  with pytest.raises(dj.ConfigError) as info:
    T.make_timing("alibaba", job=job)
  message = str(info.value)
  assert message.startswith(f"timing.job={job!r} is not allowed: "), message
  assert "job_1" in message and "job_4" in message and "\n" not in message


@pytest.mark.parametrize("make, field, value", list(timing_cases()))
def test_a_bad_timing_field_is_refused_when_the_model_is_made(make, field, value):
  with pytest.raises(dj.ConfigError) as info:
    make()
  message = str(info.value)
  assert message.startswith(f"timing.{field}={value!r} is not allowed: "), message
  assert "\n" not in message


@pytest.mark.parametrize("times, field", [
    (np.ones(5), "timing.batch_times.ndim"),
    (np.ones((2, 0)), "timing.batch_times.shape[1]"),
    (np.array([[1.0, np.nan]]), "timing.batch_times"),
    (np.array([[1.0, 0.0]]), "timing.batch_times"),
    (np.array([[1.0, -2.0]]), "timing.batch_times"),
    (np.array([[1.0, np.inf]]), "timing.batch_times"),
    ([["a", "b"]], "timing.batch_times"),
    ("trace.npy", "timing.batch_times"),
])
def test_a_bad_trace_is_refused_when_it_is_made(times, field):
  with pytest.raises(dj.ConfigError, match="^" + re.escape(field) + "="):
    T.TraceTiming(times)


def test_a_timing_model_that_is_not_registered_by_name():
  for name in ("poisson", ["trace"], None):
    with pytest.raises(dj.ConfigError, match=r"^timing.name=.* choose one of"):
      T.make_timing(name)
  with pytest.raises(dj.ConfigError, match=r"^timing.batch_time is not allowed with timing"):
    T.make_timing("homogeneous", batch_time=1.0)


# --------------------------------------------------------------------------
# Through the experiments: one error line, no run directory.
# --------------------------------------------------------------------------

TINY = ["--config.algorithms=ga", "--config.num_workers=2", "--config.seeds=0",
        "--config.epochs=1", "--config.baseline="]


@pytest.mark.parametrize("flags, shown", [
    (["--config.options_by_algorithm.ga.per_tensor=maybe"], "per_tensor='maybe'"),
    (["--config.options_by_algorithm.ga.beta=2"], "beta=2"),
    (["--config.options_by_algorithm.ga.eps=-1"], "eps=-1"),
    (["--config.algorithms=dc_asgd",
      "--config.options_by_algorithm.dc_asgd.variance_control=lots"], "variance_control='lots'"),
    (["--config.algorithms=ringmaster", "--config.options_by_algorithm.ringmaster.max_delay=0"],
     "max_delay=0"),
    (["--config.algorithms=async_local_sgd",
      "--config.options_by_algorithm.async_local_sgd.inner=sgdd"], "inner='sgdd'"),
    (["--config.algorithm_options.beta=1.5"], "beta=1.5"),
    (["--config.epochs=1000000000"], "config.epochs=1000000000"),
])
def test_an_experiment_refuses_a_bad_option_in_one_line_and_writes_nothing(flags, shown,
                                                                           tmp_path):
  from experiments import main

  workdir = tmp_path / "runs"
  began = time.perf_counter()
  with pytest.raises(SystemExit) as info:
    main.run("digits", [*TINY, *flags, f"--workdir={workdir}"])
  message = str(info.value.code)
  assert message.startswith("error: config.") and "\n" not in message, message
  assert shown in message and "is not allowed" in message, message
  assert not workdir.exists()
  assert time.perf_counter() - began < 20


# --------------------------------------------------------------------------
# Sizes: refused from the estimate, before anything big exists.
# --------------------------------------------------------------------------


def test_a_huge_number_of_workers_is_refused_within_a_second():
  big = dj.flax_model(models.MLP((256,)), (8, 8))  # 19,210 parameters: 77 KB a copy
  dj.Simulator(big, "nag", X, Y, num_workers=2, batch_size=8)  # warm the imports
  began = time.perf_counter()
  with pytest.raises(dj.ConfigError, match=r"^num_workers=10000000 is not allowed: .*GiB.*"
                                           r"GiB") as info:
    dj.Simulator(big, "nag", X, Y, num_workers=10 ** 7, batch_size=8)
  assert time.perf_counter() - began < 1.0
  assert isinstance(info.value, MemoryError)  # the memory check's type too
  # 10^7 read copies of 19,210 float32 parameters: at least 715 GiB, whatever else counts.
  assert float(str(info.value).split("at least ")[1].split(" GiB")[0]) >= 715


def test_huge_steps_are_refused_before_the_schedule_is_built():
  sim = dj.Simulator(MODEL, "nag", X, Y, num_workers=2, batch_size=8)
  for steps, kwargs in [(10 ** 12, {}), (10 ** 11, dict(chunk_steps=10 ** 10))]:
    began = time.perf_counter()
    with pytest.raises(dj.ConfigError, match=f"^num_steps={steps} is not allowed: .*"
                                             "GiB of host memory.* schedule"):
      dj.simulate(sim, steps, progress=False, **kwargs)
    assert time.perf_counter() - began < 1.0
  sync = dj.Simulator(MODEL, "ssgd", X, Y, num_workers=4, batch_size=8, seeds=[0, 1])
  began = time.perf_counter()
  with pytest.raises(dj.ConfigError, match=r"^num_steps=.* 2 schedule\(s\) of .* rounds"):
    dj.simulate(sync, 10 ** 12, progress=False)
  assert time.perf_counter() - began < 1.0


def _peak(fn) -> int:
  tracemalloc.start()
  try:
    fn()
    return tracemalloc.get_traced_memory()[1]
  finally:
    tracemalloc.stop()


@pytest.mark.parametrize("num_workers, steps, block_size, rule", [
    (8, 60_000, 1, None), (8, 60_000, 8, None), (500, 30_000, 1, None),
    (8, 3_000, 1, S.RestartAtDelay(4))])
def test_the_schedule_estimate_is_a_lower_bound_of_what_it_holds(num_workers, steps,
                                                                 block_size, rule):
  est = S.schedule_nbytes(num_workers, steps, block_size=block_size,
                          restarts=rule is not None)
  held = _peak(lambda: S.make_schedule(dj.homogeneous(), num_workers, steps,
                                       block_size=block_size, restart_rule=rule))
  assert held >= est  # refusing never turns away a schedule that fits
  assert held < 10 * est  # and it is not vacuous
  # What the Schedule keeps: at least its per-event arrays.
  sched = S.make_schedule(dj.homogeneous(), num_workers, steps, block_size=block_size,
                          restart_rule=rule)
  kept = sum(getattr(sched, f.name).nbytes for f in dataclasses.fields(sched)
             if isinstance(getattr(sched, f.name), np.ndarray))
  assert kept >= 0.5 * S.EVENT_BYTES * steps


def test_a_run_that_fits_passes_the_size_check():
  sim = dj.Simulator(MODEL, "ga", X, Y, num_workers=4, batch_size=8, seeds=[0, 1])
  sizes = dj.check_size(sim.spec, MODEL, num_steps=100, chunk_steps=10,
                        data_nbytes=sim.data_nbytes)
  assert 0 < sizes["total"] < sizes["available"]
  result = dj.simulate(sim, 20, chunk_steps=10, progress=False)
  assert result.history[-1]["step"] == 20


# --------------------------------------------------------------------------
# The public API: a wrong type or value is one dj.ConfigError line naming the argument.
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _sim():
  return dj.Simulator(MODEL, "nag", X, Y, num_workers=2, batch_size=8)


def _simulator(algorithm="nag", x=X, y=Y, model=MODEL, **kwargs):
  return dj.Simulator(model, algorithm, x, y, **{"num_workers": 2, "batch_size": 8, **kwargs})


def _evaluate(*args, **kwargs):
  params, stats = MODEL.init(jax.random.key(0))
  defaults = (MODEL, params, stats, X, Y)
  return dj.evaluate(*(args + defaults[len(args):]), **kwargs)


API_MISTAKES = [  # (name, the call, the field its one line starts with)
    ("model not a Model", lambda: _simulator(model=[1]), "model"),
    ("algorithm a list", lambda: _simulator(["ga"]), "algorithm"),
    ("algorithm a number", lambda: _simulator(3), "algorithm"),
    ("inputs a scalar", lambda: _simulator(x=3), "train_inputs"),
    ("inputs a list", lambda: _simulator(x=X.tolist()), "train_inputs"),
    ("labels a list", lambda: _simulator(y=Y.tolist()), "train_labels"),
    ("no labels", lambda: _simulator(y=None), "train_labels"),
    ("labels of another length", lambda: _simulator(y=Y[:5]), "train_labels"),
    ("hyperparams a dict", lambda: _simulator(hyperparams={"learning_rate": 0.1}),
     "hyperparams"),
    ("learning rate a word", lambda: _simulator(hyperparams=dj.Hyperparams("fast")),
     "hyperparams.learning_rate"),
    ("schedule a number", lambda: _simulator(learning_rate_schedule=0.1),
     "learning_rate_schedule"),
    ("options a list", lambda: _simulator(algorithm_options=["penalty"]), "algorithm_options"),
    ("timing a list", lambda: _simulator(timing=[1.0, 2.0]), "timing"),
    ("timing a name", lambda: _simulator(timing="homogeneous"), "timing"),
    ("seeds a string", lambda: _simulator(seeds="01"), "seeds"),
    ("seed a float", lambda: _simulator(seeds=1.5), "seeds"),
    ("seed negative", lambda: _simulator(seeds=[0, -1]), "seeds"),
    ("seed of 2^70", lambda: _simulator(seeds=2 ** 70), "seeds"),
    ("timing seed negative", lambda: _simulator(timing_seeds=[-1]), "timing_seeds"),
    ("no seeds", lambda: _simulator(seeds=[]), "seeds"),
    ("timing seeds of another count", lambda: _simulator(timing_seeds=[0, 1]), "timing_seeds"),
    ("unknown replica execution", lambda: _simulator(replica_execution="pmap"),
     "replica_execution"),
    ("augment a number", lambda: _simulator(augment=3), "augment"),
    ("mesh a number", lambda: _simulator(mesh=3), "mesh"),
    ("worker program a name", lambda: _simulator(worker_program="local"), "worker_program"),
    ("restart rule a number", lambda: _simulator(restart_rule=3), "restart_rule"),
    ("workers a bool", lambda: _simulator(num_workers=True), "num_workers"),
    ("execution a list", lambda: _simulator(execution=["steps"]), "execution"),
    ("simulate without a simulator", lambda: dj.simulate([1], 5), "simulator"),
    ("steps a float", lambda: dj.simulate(_sim(), 5.0, progress=False), "num_steps"),
    ("eval data without labels", lambda: dj.simulate(_sim(), 5, eval_data=X), "eval_data"),
    ("eval labels of another length", lambda: dj.simulate(_sim(), 5, eval_data=(X, Y[:3])),
     "eval_data[1]"),
    ("callback a number", lambda: dj.simulate(_sim(), 5, callback=3), "callback"),
    ("state a dict", lambda: dj.simulate(_sim(), 5, state={}), "state"),
    ("checkpoint dir a number", lambda: dj.simulate(_sim(), 5, checkpoint_dir=3),
     "checkpoint_dir"),
    ("progress a word", lambda: dj.simulate(_sim(), 5, progress="yes"), "progress"),
    ("evaluate without labels", lambda: dj.evaluate(MODEL, {}, {}, X), "labels"),
    ("evaluate in batches of 0", lambda: _evaluate(batch_size=0), "batch_size"),
    ("evaluate a list", lambda: _evaluate([1]), "model"),
    ("evaluate params None", lambda: _evaluate(MODEL, None), "params"),
    ("evaluate a replica stack of params",
     lambda: _evaluate(MODEL, jax.tree.map(lambda a: a[None], MODEL.init(jax.random.key(0))[0])),
     "params"),
    ("evaluate params missing a layer",
     lambda: _evaluate(MODEL, dict(list(MODEL.init(jax.random.key(0))[0].items())[:-1])),
     "params"),
    ("optimizer rate a string", lambda: dj.optimizer("ga", learning_rate="0.1"),
     "learning_rate"),
    ("optimizer of 0 workers", lambda: dj.optimizer("dana", num_workers=0), "num_workers"),
    ("optimizer name a list", lambda: dj.optimizer(["ga"]), "algorithm"),
    ("optimizer momentum 1.5", lambda: dj.optimizer("nag", momentum=1.5), "momentum"),
    ("get_algorithm of None", lambda: dj.get_algorithm(None), "algorithm"),
    ("schedule of a list", lambda: dj.make_schedule([1], 2, 5), "timing"),
    ("schedule seed a string", lambda: dj.make_schedule(dj.homogeneous(), 2, 5, seed="a"),
     "seed"),
    ("schedule boundaries a number",
     lambda: dj.make_schedule(dj.homogeneous(), 2, 5, boundaries=3), "boundaries"),
    ("schedule restart rule a number",
     lambda: dj.make_schedule(dj.homogeneous(), 2, 5, restart_rule=3), "restart_rule"),
    ("schedule of 0 workers", lambda: dj.make_schedule(dj.homogeneous(), 0, 5),
     "num_workers"),
    ("gamma shape a list", lambda: dj.GammaTiming(shape=[1.0]), "timing.shape"),
    ("trace a string", lambda: dj.TraceTiming("times.npy"), "timing.batch_times"),
    ("homogeneous mean -1", lambda: dj.homogeneous(mean=-1.0), "timing.mean"),
    ("heterogeneous shape 0", lambda: dj.heterogeneous(shape=0), "timing.shape"),
    ("mesh of True replicas", lambda: dj.make_mesh(replicas=True), "mesh.replicas"),
    ("mesh of 2.0 workers", lambda: dj.make_mesh(workers=2.0), "mesh.workers"),
    ("mesh devices a number", lambda: dj.make_mesh(devices=3), "devices"),
    ("paper schedule steps a string", lambda: dj.paper_learning_rate(0.1, steps_per_epoch="a"),
     "steps_per_epoch"),
    ("paper schedule decays out of order",
     lambda: dj.paper_learning_rate(0.1, steps_per_epoch=10, decay_epochs=(5, 2)), "decay_epochs"),
    ("paper schedule of 0 workers",
     lambda: dj.paper_learning_rate(0.1, steps_per_epoch=10, num_workers=0), "num_workers"),
    ("paper schedule decay factor 0",
     lambda: dj.paper_learning_rate(0.1, steps_per_epoch=10, decay_factor=0), "decay_factor"),
    ("negative warm-up in epochs", lambda: dj.paper_in_epochs(warmup_epochs=-1),
     "warmup_epochs"),
    ("InEpochs of a number", lambda: dj.InEpochs(3), "InEpochs.fn"),
    ("flax model of a flat shape", lambda: dj.flax_model(models.MLP((4,)), 64),
     "input_shape"),
    ("flax model of a name", lambda: dj.flax_model("mlp", (8, 8)), "module"),
    ("speedup of one N", lambda: dj.estimate_speedup(dj.homogeneous(), 4), "num_workers"),
    ("speedup of 0 runs", lambda: dj.estimate_speedup(dj.homogeneous(), [4], num_runs=0),
     "num_runs"),
]


def test_the_api_table_is_large():
  assert len(API_MISTAKES) >= 30


@pytest.mark.parametrize("name, call, field", API_MISTAKES, ids=[m[0] for m in API_MISTAKES])
def test_an_api_mistake_is_one_config_error_line_naming_the_argument(name, call, field):
  with pytest.raises(dj.ConfigError) as info:
    call()
  message = str(info.value)
  assert "\n" not in message, message
  assert message.startswith((f"{field}=", f"{field} ")), message
  assert "is not allowed" in message, message
