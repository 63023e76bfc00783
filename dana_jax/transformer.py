"""A small decoder-only Transformer language model and its next-token loss (flax linen).

Pre-LayerNorm blocks (Radford et al. 2019; Xiong et al. 2020): for each of
``depth`` blocks,

    x ← x + W_o · softmax(mask(Q Kᵀ / √d_h)) V,   Q, K, V = LN(x) W_q, LN(x) W_k, LN(x) W_v
    x ← x + W_2 · gelu(W_1 · LN(x))

with causal masking (position t attends to positions ≤ t), then a final
LayerNorm and a projection to the vocabulary. Positions are learned embeddings
added to the token embeddings, or rotary (RoPE, Su et al. 2021: queries and
keys rotated by position-dependent angles θ_i = t · 10000^(−2i/d_h)).

Trained with next-token cross-entropy on fixed-length windows (docs/spec.md §1: each
window is one example of the data stream): ``inputs = s[k:k+T]``,
``labels = s[k+1:k+T+1]``. :func:`language_model` wraps a module as an engine
:class:`~dana_jax.engine.Model` with that loss and the metrics ``loss``
(nats per token), ``bits_per_token`` (= bits per byte for byte-level tokens)
and ``error`` (the fraction of next tokens not predicted, arg max).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dana_jax.engine import Model
from dana_jax.engine.flax_adapter import flax_model
from dana_jax.errors import ConfigError


def rotary(x: jax.Array) -> jax.Array:
  """RoPE on ``x`` [B, T, H, D] (D even): pairs (x_2i, x_2i+1) rotated by t·10000^(−2i/D)."""
  t, d = x.shape[1], x.shape[-1]
  freq = 10000.0 ** (-jnp.arange(0, d, 2, dtype=jnp.float32) / d)
  angle = jnp.arange(t, dtype=jnp.float32)[:, None] * freq[None, :]  # [T, D/2]
  cos, sin = jnp.cos(angle)[None, :, None, :], jnp.sin(angle)[None, :, None, :]
  even, odd = x[..., 0::2], x[..., 1::2]
  rotated = jnp.stack([even * cos - odd * sin, even * sin + odd * cos], axis=-1)
  return rotated.reshape(x.shape).astype(x.dtype)


class CausalSelfAttention(nn.Module):
  heads: int
  rope: bool = False
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train: bool = False):
    b, t, width = x.shape
    if width % self.heads:
      raise ConfigError(f"width={width} is not allowed: need a multiple of heads={self.heads}.")
    dh = width // self.heads
    qkv = nn.Dense(3 * width, use_bias=False, name="qkv")(x).reshape(b, t, 3, self.heads, dh)
    q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
    if self.rope:
      q, k = rotary(q), rotary(k)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
    causal = jnp.tril(jnp.ones((t, t), bool))
    scores = jnp.where(causal, scores, jnp.finfo(scores.dtype).min)
    weights = nn.Dropout(self.dropout, deterministic=not train)(jax.nn.softmax(scores, -1))
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, width)
    return nn.Dense(width, use_bias=False, name="out")(out)


class Block(nn.Module):
  heads: int
  rope: bool = False
  dropout: float = 0.0
  mlp_ratio: int = 4

  @nn.compact
  def __call__(self, x, train: bool = False):
    drop = nn.Dropout(self.dropout, deterministic=not train)
    x = x + drop(CausalSelfAttention(self.heads, self.rope, self.dropout)(nn.LayerNorm()(x),
                                                                          train))
    h = nn.gelu(nn.Dense(self.mlp_ratio * x.shape[-1])(nn.LayerNorm()(x)))
    return x + drop(nn.Dense(x.shape[-1])(h))


class DecoderLM(nn.Module):
  """``module(tokens [B, T] int, train) -> logits [B, T, vocab_size]``.

  Attributes:
    vocab_size: V (256 for bytes).
    width: d, the residual width; depth: blocks; heads: attention heads (d_h = d / heads).
    max_len: the longest window (learned positions).
    positions: ``"learned"`` or ``"rotary"``.
    dropout: on attention weights and residual branches (training only).
  """
  vocab_size: int = 256
  width: int = 64
  depth: int = 2
  heads: int = 4
  max_len: int = 256
  positions: str = "learned"
  dropout: float = 0.0

  @nn.compact
  def __call__(self, tokens, train: bool = False):
    if self.positions not in ("learned", "rotary"):
      raise ConfigError(f"positions={self.positions!r} is not allowed: choose 'learned' or "
                       "'rotary'.")
    if tokens.shape[-1] > self.max_len:
      raise ConfigError(f"window={tokens.shape[-1]} is not allowed: the model's max_len is "
                       f"{self.max_len}.")
    x = nn.Embed(self.vocab_size, self.width, name="tokens")(tokens)
    if self.positions == "learned":
      x = x + nn.Embed(self.max_len, self.width, name="positions")(
          jnp.arange(tokens.shape[-1]))[None]
    for i in range(self.depth):
      x = Block(self.heads, self.positions == "rotary", self.dropout, name=f"block_{i}")(
          x, train)
    return nn.Dense(self.vocab_size, name="logits")(nn.LayerNorm()(x))


def lm_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-window next-token cross-entropy [B]: the mean over the window's T positions."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(axis=-1)


def lm_metrics(logits: jax.Array, labels: jax.Array) -> dict:
  """Per-window ``loss`` (nats per token), ``bits_per_token`` and ``error`` [B]."""
  loss = lm_loss(logits, labels)
  error = (jnp.argmax(logits, -1) != labels).mean(axis=-1).astype(loss.dtype)
  return {"loss": loss, "bits_per_token": loss / math.log(2.0), "error": error}


def language_model(module: nn.Module, window: int, **kwargs) -> Model:
  """``module`` (e.g. :class:`DecoderLM`) as an engine model on windows of ``window``
  integer tokens, with :func:`lm_loss` and :func:`lm_metrics`."""
  return flax_model(module, (int(window),), loss=lm_loss, metrics=lm_metrics,
                    input_dtype=jnp.int32, **kwargs)
