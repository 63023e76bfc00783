"""Language modelling: the windows of a token stream, the Transformer, the corpora's loaders,
and one-worker training equal to a plain optax loop."""

import gzip
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import dana_jax as dj
from dana_jax import data, transformer
from experiments import input_pipeline, plot, text, train
from experiments.configs import wikitext103
from tests.references.environment_s1 import data_order_batch

TEXT = ("The parameter server applies each gradient when it arrives. Workers read the "
        "parameters, compute a gradient on their batch, and send it back. ") * 40


def test_windows_are_non_overlapping_with_the_next_token_as_label():
  tokens = data.byte_tokens("abcdefghij")
  np.testing.assert_array_equal(tokens, [ord(c) for c in "abcdefghij"])
  inputs, labels = data.windows(tokens, 3)
  want_in, want_lab = [], []
  for k in range((len(tokens) - 1) // 3):  # one at a time, as the docstring says
    want_in.append(tokens[3 * k:3 * k + 3])
    want_lab.append(tokens[3 * k + 1:3 * k + 4])
  np.testing.assert_array_equal(inputs, want_in)
  np.testing.assert_array_equal(labels, want_lab)
  assert inputs.dtype == np.int32 and inputs.shape == (3, 3)
  with pytest.raises(ValueError, match="window=20 is not allowed"):
    data.windows(tokens, 20)
  assert data.byte_tokens("é").tolist() == [0xC3, 0xA9]  # UTF-8 bytes


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_the_transformer_is_causal(positions):
  module = transformer.DecoderLM(width=16, depth=2, heads=2, max_len=12, positions=positions)
  tokens = jnp.asarray(data.byte_tokens("causal models")[:12])[None]
  params = module.init(jax.random.key(0), tokens)
  logits = module.apply(params, tokens)
  assert logits.shape == (1, 12, 256)
  changed = tokens.at[0, 7].set(0)  # a later token changes: earlier outputs do not
  other = module.apply(params, changed)
  np.testing.assert_allclose(other[0, :7], logits[0, :7], rtol=1e-5, atol=1e-6)
  assert not np.allclose(other[0, 7:], logits[0, 7:])
  with pytest.raises(ValueError, match="max_len"):
    module.apply(params, jnp.zeros((1, 13), jnp.int32))


def test_rotary_rotates_pairs_by_position():
  x = jax.random.normal(jax.random.key(1), (1, 5, 1, 4))
  out = np.asarray(transformer.rotary(x))
  for t in range(5):
    for i in range(2):
      angle = t * 10000.0 ** (-2 * i / 4)
      a, b = np.asarray(x[0, t, 0, 2 * i]), np.asarray(x[0, t, 0, 2 * i + 1])
      np.testing.assert_allclose(out[0, t, 0, 2 * i:2 * i + 2],
                                 [a * np.cos(angle) - b * np.sin(angle),
                                  a * np.sin(angle) + b * np.cos(angle)], rtol=1e-5, atol=1e-6)


def test_lm_loss_and_metrics_against_numpy():
  logits = jax.random.normal(jax.random.key(2), (2, 3, 5))
  labels = jnp.asarray([[0, 4, 2], [1, 1, 3]])
  lg = np.asarray(logits, np.float64)
  logp = lg - np.log(np.exp(lg).sum(-1, keepdims=True))
  want = -np.take_along_axis(logp, np.asarray(labels)[..., None], -1)[..., 0].mean(-1)
  metrics = transformer.lm_metrics(logits, labels)
  np.testing.assert_allclose(transformer.lm_loss(logits, labels), want, rtol=1e-5)
  np.testing.assert_allclose(metrics["bits_per_token"], want / np.log(2), rtol=1e-5)
  np.testing.assert_allclose(metrics["error"],
                             (lg.argmax(-1) != np.asarray(labels)).mean(-1), rtol=1e-6)


def flat(tree):
  return np.asarray(ravel_pytree(tree)[0])


def test_one_worker_run_equals_a_plain_optax_loop():
  x, y = data.windows(data.byte_tokens(TEXT), 8)
  model = transformer.language_model(transformer.DecoderLM(width=16, depth=1, heads=2,
                                                           max_len=8), 8)
  steps, lr = 12, 0.05
  sim = dj.Simulator(model, "sgd", x, y, num_workers=1, batch_size=4,
                     hyperparams=dj.Hyperparams(lr, 0.9, 0.0))
  result = dj.simulate(sim, steps, chunk_steps=4, progress=False)
  params, _ = model.init(jax.random.fold_in(jax.random.key(0), 1))
  tx = optax.chain(optax.add_decayed_weights(0.0), optax.sgd(lr, momentum=0.9))
  state = tx.init(params)
  loss = jax.jit(jax.value_and_grad(lambda p, xb, yb: model.loss(p, xb, yb, None)[0]))
  losses = []
  for t in range(steps):
    idx = data_order_batch(0, x.shape[0], 4, t)
    value, grads = loss(params, x[idx], y[idx])
    losses.append(float(value))
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(flat(result.state.params), flat(params), rtol=1e-5, atol=1e-6)
  engine = [h["replicas"][0]["loss/train"] for h in result.history]
  np.testing.assert_allclose(engine, [np.mean(losses[i:i + 4]) for i in (0, 4, 8)], rtol=1e-5)


def _foldoc_file(tmp_path, count=200):
  articles = "".join(f"term{i}\n\n   <computing> The {i}th term of a tiny dictionary, made "
                     f"in the test.  See {{term{i + 1}}}.\n\n   (2026-12-02)\n\n"
                     for i in range(count))
  path = tmp_path / "foldoc.dict.dz"
  path.write_bytes(gzip.compress(("\n\n00-database-info\n   header\n\n" + articles).encode()))
  return path


def test_foldoc_loader_formats_and_splits_articles(tmp_path):
  splits = text.foldoc(_foldoc_file(tmp_path))
  assert splits["valid"].startswith(" = term0 = \n\n<computing> The 0th term")
  assert splits["test"].startswith(" = term1 = ")
  assert " = term2 = " in splits["train"] and "{" not in splits["train"]
  assert sum(s.count(" = term") for s in splits.values()) == 200  # the header is dropped
  with pytest.raises(input_pipeline.DataError, match="apt-get install -y dict-foldoc"):
    text.foldoc(tmp_path / "missing.dz")
  assert text.corpus("foldoc", tmp_path) == splits  # --config.data_dir: its directory


def test_wikitext_loader_reads_the_release_layout_and_says_what_it_needs(tmp_path):
  for split in ("train", "valid", "test"):
    (tmp_path / f"wiki.{split}.tokens").write_text(f" = {split} = \n\n tokens of {split} \n")
  splits = text.wikitext103(tmp_path)
  assert splits["valid"] == " = valid = \n\n tokens of valid \n"
  (tmp_path / "wiki.test.tokens").unlink()
  with pytest.raises(input_pipeline.DataError, match="wiki.train.tokens, wiki.valid.tokens"):
    text.wikitext103(tmp_path)


@pytest.mark.parametrize("preset, families", [
    # The Transformer itself is checked by default against a plain optax loop
    # (test_one_worker_run_equals_a_plain_optax_loop); these sweeps run with -m slow.
    pytest.param("offline", ("ga", "sgd", "async_local_sgd"), marks=pytest.mark.slow),
    # SA and GA over AdamW are tested on the MLP in test_methods.
    pytest.param("offline_adamw", ("sa", "ga"), marks=pytest.mark.slow)])
def test_a_short_simulation_per_family_on_text(preset, families, tmp_path, monkeypatch):
  monkeypatch.setattr(text, "FOLDOC", _foldoc_file(tmp_path))
  config = wikitext103.get_config(preset)
  config.update(dict(algorithms=tuple(a for a in families if a != "sgd"), num_workers=(2,),
                     seeds=(0,), window=8, width=16, depth=1, heads=2, batch_size=4,
                     max_train_windows=64, chunk_steps=None))
  summaries = train.run_sweep(config, tmp_path / "runs")
  assert {s["algorithm"] for s in summaries} >= set(families) - {"sgd"}
  for s in summaries:
    assert np.isfinite(s["final_test_error"][0])
  last = summaries[-1]
  rows = [json.loads(line) for line in (tmp_path / "runs" / f"{last['algorithm']}_N2" /
                                         "metrics.jsonl").read_text().splitlines()]
  bits = rows[-1]["test/bits_per_token"]  # the validation split, bits per byte
  assert np.isfinite(bits) and bits == pytest.approx(rows[-1]["test/loss"] / np.log(2))
  plot.main(tmp_path / "runs", quiet=True)  # the report: bits per byte and perplexity
  report = (tmp_path / "runs" / "results.md").read_text()
  assert "## Validation bits per byte (language model)" in report
  assert "## Validation perplexity per byte" in report
  assert (tmp_path / "runs" / "bits_vs_workers.png").exists()
  fig = plot.plot_error_vs_time(tmp_path / "runs", tmp_path / "b", scale=1.0,
                                key="test/bits_per_token", ylabel="bits")
  drawn = [line for ax in fig.axes if ax.get_visible() for line in ax.get_lines()]
  assert drawn and all(np.all(np.isfinite(line.get_ydata())) for line in drawn)
  last_ga = [line for line in drawn if line.get_label() == last["algorithm"]][-1]
  assert last_ga.get_ydata()[-1] == pytest.approx(bits)  # one seed: its last evaluation
