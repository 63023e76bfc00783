"""Every rule of docs/spec.md §2 against a numpy implementation of its equations."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import dana_jax as dj
from dana_jax import transforms as T
from tests.references.update_rules_s2 import ReferenceMaster

jax.config.update("jax_enable_x64", False)

ASYNC = ["sgd", "asgd", "nag", "sa", "ga", "dana", "dana_sa", "dana_ga", "dc_asgd"]


def lr_with_decay(t):
  """η with a ×0.1 decay at step 6, as a schedule usable by both sides."""
  return 0.1 * jnp.where(jnp.asarray(t) >= 6, 0.1, 1.0)


def ref_lr(t):
  return 0.1 * (0.1 if t >= 6 else 1.0)


def drive(name, *, momentum=0.9, weight_decay=1e-2, num_workers=3, steps=12, options=None,
          ref_options=None, seed=0):
  """Runs the optax optimizer and the numpy reference on the same random inputs."""
  rng = np.random.default_rng(seed)
  params = {"a": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32),
            "b": jnp.asarray(rng.normal(size=(5,)), jnp.float32)}
  flat, unravel = ravel_pytree(params)
  tx = dj.optimizer(name, learning_rate=lr_with_decay, momentum=momentum,
                    weight_decay=weight_decay, num_workers=num_workers, **(options or {}))
  state = tx.init(params)
  ref = ReferenceMaster(name, np.asarray(flat), num_workers=num_workers, lr=ref_lr,
                        momentum=momentum, weight_decay=weight_decay, **(ref_options or {}))
  update = jax.jit(tx.update)
  lags = [0, 0, 3, 1, 5, 0, 2, 7, 1, 0, 4, 2][:steps]
  for t in range(steps):
    g = rng.normal(size=flat.shape)
    stale = ref.theta - rng.normal(scale=0.05, size=flat.shape) * (lags[t] > 0)
    worker = t % num_workers
    updates, state = update(unravel(jnp.asarray(g, jnp.float32)), state, params,
                            lag=lags[t], stale_params=unravel(jnp.asarray(stale, jnp.float32)),
                            worker=worker)
    params = optax.apply_updates(params, updates)
    ref.apply(g, lags[t], stale, worker)
    np.testing.assert_allclose(np.asarray(ravel_pytree(params)[0]), ref.theta, rtol=2e-4,
                               atol=2e-6, err_msg=f"{name} step {t}")
  return params, state, ref


@pytest.mark.parametrize("name", ASYNC)
@pytest.mark.parametrize("momentum", [0.9, 0.0, -0.5])
def test_rule_matches_numpy_equations(name, momentum):
  drive(name, momentum=momentum)


@pytest.mark.parametrize("options,ref_options", [
    ({"penalty": "max"}, {"penalty": "max"}),
    ({"penalize_weight_decay": False}, {"penalize_weight_decay": False}),
    ({"beta": 0.9, "eps": 1e-6}, {"beta": 0.9, "eps": 1e-6}),
])
@pytest.mark.parametrize("name", ["ga", "dana_ga"])
def test_gap_aware_options(name, options, ref_options):
  drive(name, options=options, ref_options=ref_options)


@pytest.mark.parametrize("penalty", ["one_plus", "max"])
def test_gap_aware_diagnostics_are_means_of_the_reference_ratio_and_penalty(penalty):
  _, state, ref = drive("ga", options={"penalty": penalty}, ref_options={"penalty": penalty})
  ga = T.find_states(state, T.GapAwareState)[0]
  np.testing.assert_allclose(float(ga.mean_gap), np.mean(ref.last_ratio), rtol=1e-4)
  np.testing.assert_allclose(float(ga.mean_penalty), np.mean(ref.last_G), rtol=1e-4)
  assert np.mean(ref.last_ratio) > 0.01  # the last step had a gap: the check has teeth


def test_gap_aware_per_tensor():
  # Leaves flatten in key order: "a" (12 values) then "b" (5 values).
  drive("ga", options={"per_tensor": True}, ref_options={"segments": [(0, 12), (12, 17)]})


def test_dana_ga_gap_against_params():
  drive("dana_ga", options={"gap_against": "params"}, ref_options={"gap_against": "params"})


@pytest.mark.parametrize("adaptive", [False, True])
def test_delay_compensation_variants(adaptive):
  drive("dc_asgd", options={"adaptive": adaptive, "variance_control": 0.5},
        ref_options={"dc_adaptive": adaptive, "dc_lambda": 0.5})


def run_fresh(name, base, steps=8, num_workers=1):
  """Lag 0 and stale = current read: every rule should equal its base optimizer."""
  rng = np.random.default_rng(1)
  params = {"w": jnp.asarray(rng.normal(size=7), jnp.float32)}
  txs = {n: dj.optimizer(n, learning_rate=lr_with_decay, momentum=0.9, weight_decay=1e-2,
                         num_workers=num_workers) for n in (name, base)}
  states = {n: tx.init(params) for n, tx in txs.items()}
  ps = {n: params for n in txs}
  for _ in range(steps):
    g = {"w": jnp.asarray(rng.normal(size=7), jnp.float32)}
    for n, tx in txs.items():
      stale = T.gap_reference(states[n], ps[n])
      up, states[n] = tx.update(g, states[n], ps[n], lag=0, stale_params=stale, worker=0)
      ps[n] = optax.apply_updates(ps[n], up)
  return ps[name]["w"], ps[base]["w"]


@pytest.mark.parametrize("name,base", [("sa", "nag"), ("ga", "nag"), ("dc_asgd", "nag"),
                                       ("dana_sa", "dana"), ("dana_ga", "dana")])
def test_no_staleness_reduces_to_base(name, base):
  a, b = run_fresh(name, base)
  np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_dana_with_one_worker_is_nesterov():
  """DANA's look-aheads are NAG's iterates when λ = 0 (spec §2.6)."""
  rng = np.random.default_rng(2)
  theta = jnp.asarray(rng.normal(size=6), jnp.float32)
  dana = dj.optimizer("dana", learning_rate=0.05, momentum=0.9, weight_decay=0.0)
  nag = optax.sgd(0.05, momentum=0.9, nesterov=True)
  ds, ns = dana.init({"w": theta}), nag.init({"w": theta})
  dp, nparams = {"w": theta}, {"w": theta}
  grad = lambda p: {"w": jnp.sin(3 * p["w"]) + p["w"]}  # a smooth non-quadratic loss
  for _ in range(15):
    look = T.read_params(ds, dp)
    up, ds = dana.update(grad(look), ds, dp, lag=0, stale_params=look, worker=0)
    dp = optax.apply_updates(dp, up)
    up, ns = nag.update(grad(nparams), ns, nparams)
    nparams = optax.apply_updates(nparams, up)
    np.testing.assert_allclose(T.read_params(ds, dp)["w"], nparams["w"], rtol=1e-5, atol=1e-6)


def test_dana_lookahead_equals_theta_minus_sum_of_momenta():
  tx = T.dana(0.1, 0.8, num_workers=4)
  params = {"w": jnp.zeros(3)}
  state = tx.init(params)
  rng = np.random.default_rng(0)
  for worker in [2, 0, 2, 3, 1]:
    up, state = tx.update({"w": jnp.asarray(rng.normal(size=3), jnp.float32)}, state, params,
                          worker=worker)
    params = optax.apply_updates(params, up)
  expected = params["w"] - 0.1 * 0.8 * state.momenta["w"].sum(0)
  np.testing.assert_allclose(T.dana_lookahead(state, params)["w"], expected, rtol=1e-6)


def test_dana_applies_false_leaves_its_state_as_it_was():
  """``applies`` (events that apply nothing, docs/spec.md §8.2): False is the state before,
  bit for bit; True is the update without it."""
  tx = T.dana(0.1, 0.8, num_workers=3)
  params = {"w": jnp.zeros(4)}
  rng = np.random.default_rng(1)
  state = tx.init(params)
  for worker in [1, 0, 2, 1]:  # some history first, so that no leaf is zero
    _, state = tx.update({"w": jnp.asarray(rng.normal(size=4), jnp.float32)}, state,
                         params, worker=worker)
  grad = {"w": jnp.asarray(rng.normal(size=4), jnp.float32)}
  _, kept = tx.update(grad, state, params, worker=2, applies=jnp.asarray(False))
  for a, b in zip(jax.tree_util.tree_leaves(kept), jax.tree_util.tree_leaves(state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  _, applied = tx.update(grad, state, params, worker=2, applies=jnp.asarray(True))
  _, plain = tx.update(grad, state, params, worker=2)
  for a, b in zip(jax.tree_util.tree_leaves(applied), jax.tree_util.tree_leaves(plain)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert int(kept.last_worker) == 1 and int(applied.last_worker) == 2


def test_gap_aware_divisor_never_below_one_and_falls_after_decay():
  """C uses η_max, so after a decay GA's penalty falls; SA's does not."""
  _, ga_state, ref = drive("ga", steps=12)
  assert np.all(ref.last_G >= 1.0)
  ga = T.find_states(ga_state, T.GapAwareState)[0]
  assert float(ga.mean_penalty) >= 1.0
  np.testing.assert_allclose(float(ga.max_learning_rate), 0.1, rtol=1e-6)

  # Same gap sequence, before and after a ×0.1 decay.
  tx = T.scale_by_gap_aware(learning_rate=lr_with_decay)
  params = {"w": jnp.zeros(4)}
  state = tx.init(params)
  penalties = []
  for t in range(10):
    # The step actually taken scales with η: so does the gap.
    gap = 0.01 * ref_lr(t)
    _, state = tx.update({"w": jnp.ones(4)}, state, params,
                         stale_params={"w": jnp.full(4, -gap)}, momentum_buffer={"w": jnp.ones(4)})
    penalties.append(float(state.mean_penalty))
  assert min(penalties) >= 1.0
  assert penalties[7] < penalties[5]  # after the decay at step 6
  sa = T.scale_by_staleness()
  out, _ = sa.update({"w": jnp.ones(4)}, sa.init(params), lag=5)
  np.testing.assert_allclose(out["w"], 0.2)  # SA divides by τ whatever η is


def test_inject_hyperparams_works_for_every_numeric_hyperparameter():
  for factory, kwargs in [
      (T.scale_by_gap_aware, {"learning_rate": 0.1, "beta": 0.99, "eps": 1e-8}),
      (T.delay_compensation, {"variance_control": 0.04}),
  ]:
    tx = optax.inject_hyperparams(factory)(**kwargs)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    out, state = tx.update(params, state, params, stale_params=params)
    assert set(kwargs) <= set(state.hyperparams)
  tx = optax.inject_hyperparams(T.dana, static_args=("num_workers",))(
      learning_rate=0.1, momentum=0.9, num_workers=2)
  params = {"w": jnp.ones(3)}
  out, state = tx.update(params, tx.init(params), params, worker=1)
  np.testing.assert_allclose(out["w"], -0.1)


def test_chains_with_optax_pieces_and_schedules():
  schedule = optax.warmup_cosine_decay_schedule(0.0, 0.1, 5, 50)
  tx = optax.chain(optax.add_decayed_weights(1e-4), T.scale_by_staleness(),
                   optax.trace(0.9, nesterov=True), optax.scale_by_learning_rate(schedule))
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  for lag in range(4):
    up, state = tx.update(params, state, params, lag=lag)
  assert np.all(np.isfinite(up["w"]))


def test_ga_finds_the_momentum_buffer_by_type_wherever_the_chain_puts_it():
  """STYLE: state found by type. A chain with an extra piece in front of the trace reads the
  same buffer: GA on it equals the named GA optimizer step for step."""
  from dana_jax.algorithms import _dana_state, _trace_buffer

  lr = 0.1
  reordered = optax.chain(optax.add_decayed_weights(1e-2), T.gap_feedback(
      T.scale_by_gap_aware(lr), optax.chain(optax.identity(), optax.trace(0.9, nesterov=True),
                                            optax.scale_by_learning_rate(lr)),
      previous_buffer=_trace_buffer, momentum=0.9))
  named = dj.optimizer("ga", learning_rate=lr, momentum=0.9, weight_decay=1e-2)
  rng = np.random.default_rng(3)
  params = {"w": jnp.asarray(rng.normal(size=6), jnp.float32)}
  pa, pb, sa, sb = params, params, reordered.init(params), named.init(params)
  for _ in range(6):
    g = {"w": jnp.asarray(rng.normal(size=6), jnp.float32)}
    stale = {"w": pa["w"] - 0.05}
    ua, sa = reordered.update(g, sa, pa, stale_params=stale)
    ub, sb = named.update(g, sb, pb, stale_params=stale)
    pa, pb = optax.apply_updates(pa, ua), optax.apply_updates(pb, ub)
    np.testing.assert_array_equal(pa["w"], pb["w"])
  assert float(T.find_states(sa, T.GapAwareState)[0].mean_penalty) > 1.0  # GA acted
  trace = T.find_states(sa, optax.TraceState)[0].trace
  np.testing.assert_array_equal(_trace_buffer(sa)["w"], trace["w"])
  dana_state = dj.optimizer("dana_ga", num_workers=2, penalize_weight_decay=False).init(params)
  assert isinstance(_dana_state(dana_state), T.DanaState)


def test_find_state_needs_exactly_one():
  from dana_jax.trees import find_state

  state = optax.chain(optax.trace(0.9), optax.trace(0.5)).init({"w": jnp.ones(2)})
  with pytest.raises(ValueError, match="holds 2 TraceState"):
    find_state(state, optax.TraceState, "ga")
  with pytest.raises(ValueError, match="holds 0 DanaState"):
    find_state(state, T.DanaState, "dana_ga")
