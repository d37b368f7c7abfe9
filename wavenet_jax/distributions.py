"""The next-sample distributions of a WaveNet's output heads: likelihoods and sampling.

'mulaw_softmax' (the paper's): the outputs are logits [..., num_classes] of a softmax
over μ-law classes.

'mixture_of_logistics' (PixelCNN++, Salimans et al. 2017; Parallel WaveNet): the outputs
are [..., 3 K] = (mixture logits, means, log scales) of K logistic distributions over
the sample value, discretized to the PCM codec's N bins (`codecs`): class c (value
v_c = (c - N/2) / (N/2)) has the mass of [v_c - 1/N, v_c + 1/N]; the first bin takes all
the mass below, the last all above. Log scales are floored at `log_scale_min`.

The mass of an interval [lo, hi] under logistic(m, s), with a = (hi - m) / s and
b = (lo - m) / s, is σ(a) - σ(b) = σ(a) σ(-b) (1 - e^-(a - b)); its logarithm
log σ(a) + log σ(-b) + log(-expm1(-(hi - lo) / s)) has no cancellation anywhere (neither
for bins of vanishing mass far in a tail nor for scales much wider than a bin), so no
density approximation is needed as a fallback. Everything here runs in float32.

Comparable bits: `mulaw_log_prob` gives the probability of the target's μ-law class, for
the mixture the mass of all PCM bins that μ-law-encode to that class (so the edges of
μ-law class k lie at PCM bin edges), which is what a softmax model is scored on.
"""
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from wavenet_jax import codecs
from wavenet_jax import mulaw

Array = jax.Array

OUTPUTS = ('mulaw_softmax', 'mixture_of_logistics')
# Uniform random numbers each sampled value needs, by head: the class; or the component
# and the logistic variate.
UNIFORMS_PER_SAMPLE = {'mulaw_softmax': 1, 'mixture_of_logistics': 2}
# Uniforms are kept this far inside (0, 1), so the logistic variate stays finite.
_UNIFORM_MARGIN = 1e-5


def check_output(output: str) -> None:
  """Raises ValueError unless `output` names a head."""
  if output not in OUTPUTS:
    raise ValueError(f'output must be one of {OUTPUTS}, got {output!r}.')


def output_size(output: str, num_classes: int, num_mixtures: int) -> int:
  """Outputs per position of a head: num_classes logits or 3 * num_mixtures parameters."""
  check_output(output)
  return num_classes if output == 'mulaw_softmax' else 3 * num_mixtures


def codec(output: str, num_classes: int) -> codecs.Codec:
  """The codec of a head's classes: μ-law for the softmax, linear PCM for the mixture."""
  check_output(output)
  return codecs.Codec('mulaw' if output == 'mulaw_softmax' else 'pcm', num_classes)


def split_mixture(outputs: Array, log_scale_min: float) -> tuple[Array, Array, Array]:
  """Mixture head outputs float [..., 3 K] -> float32 (logits, means, log scales) [..., K]."""
  logits, means, log_scales = jnp.split(outputs.astype(jnp.float32), 3, axis=-1)
  return logits, means, jnp.maximum(log_scales, log_scale_min)


def _log_interval_mass(lower: Array, upper: Array, lower_open: Array, upper_open: Array,
                       means: Array, log_scales: Array) -> Array:
  """log P(lower <= X <= upper) of every logistic(mean, scale) component.

  Args:
    lower, upper: float32 [...] interval edges (upper > lower, both finite).
    lower_open, upper_open: bool [...]: the interval reaches -inf / +inf instead.
    means, log_scales: float32 [..., K].

  Returns:
    float32 [..., K].
  """
  inverse_scales = jnp.exp(-log_scales)
  a = (upper[..., None] - means) * inverse_scales
  b = (lower[..., None] - means) * inverse_scales
  width = (upper - lower)[..., None] * inverse_scales
  # log(1 - e^-width), the width floored at the smallest normal float: it underflows to 0
  # only for scales beyond e^80, where every bin's mass is 0 in float32 anyway.
  log_inside = jnp.log(-jnp.expm1(-jnp.maximum(width, jnp.finfo(jnp.float32).tiny)))
  log_below_upper = jax.nn.log_sigmoid(a)
  log_above_lower = jax.nn.log_sigmoid(-b)
  closed = log_below_upper + log_above_lower + log_inside
  return jnp.where(lower_open[..., None], log_below_upper,
                   jnp.where(upper_open[..., None], log_above_lower, closed))


def _mixture_log_prob(outputs: Array, lower: Array, upper: Array, lower_open: Array,
                      upper_open: Array, log_scale_min: float) -> Array:
  """log P(lower <= X <= upper) under the mixture: float32 [...]."""
  logits, means, log_scales = split_mixture(outputs, log_scale_min)
  log_mass = _log_interval_mass(lower, upper, lower_open, upper_open, means, log_scales)
  return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + log_mass, axis=-1)


def log_prob(model: Any, outputs: Array, targets: Array) -> Array:
  """Log-probability in nats of each target class under the model's head.

  Args:
    model: the WaveNet (its output, num_classes and log_scale_min are read).
    outputs: float [..., output_size] head outputs (e.g. logits[:, :-1]).
    targets: int32 [...] classes of the model's codec (e.g. audio[:, 1:]).

  Returns:
    float32 [...] ln p(target).
  """
  if model.output == 'mulaw_softmax':
    log_probs = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  values = codecs.pcm_decode(targets, model.num_classes)
  return _mixture_log_prob(outputs, values - 1.0 / model.num_classes,
                           values + 1.0 / model.num_classes, targets == 0,
                           targets == model.num_classes - 1, model.log_scale_min)


@functools.lru_cache(maxsize=8)
def pcm_to_mulaw_table(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
  """Where the μ-law classes lie among num_classes linear PCM bins.

  Returns:
    (int32 [num_classes]: the μ-law class of each PCM class;
     float32 [mulaw.NUM_CLASSES + 1]: the value of the edges between μ-law classes, at
     PCM bin edges: μ-law class k holds the PCM bins between edges k and k + 1; edges 0
     and NUM_CLASSES stand for -inf and +inf (their value is a finite placeholder)).
  """
  pcm_classes = np.arange(num_classes)
  mulaw_classes = mulaw.encode(codecs.pcm_decode(pcm_classes, num_classes))
  # μ-law encoding is monotone in the value: class k starts at its first PCM bin (an
  # empty class, possible only with few PCM levels, gets width 0 and so no mass).
  first_bins = np.searchsorted(mulaw_classes, np.arange(mulaw.NUM_CLASSES + 1))
  edges = codecs.pcm_decode(first_bins, num_classes) - 1.0 / num_classes
  edges[0], edges[-1] = -1.0 - 2.0 / num_classes, 1.0
  return mulaw_classes.astype(np.int32), edges.astype(np.float32)


def mulaw_log_prob(model: Any, outputs: Array, targets: Array) -> Array:
  """Log-probability in nats of the μ-law class of each target: comparable across heads.

  Softmax head: `log_prob` itself (its classes are μ-law's). Mixture head: the mass of
  every PCM bin whose value μ-law-encodes to the target's class (see `pcm_to_mulaw_table`).

  Args, returns: as `log_prob`.
  """
  if model.output == 'mulaw_softmax':
    return log_prob(model, outputs, targets)
  mulaw_classes, edges = pcm_to_mulaw_table(model.num_classes)
  target_classes = jnp.asarray(mulaw_classes)[targets]
  edges = jnp.asarray(edges)
  return _mixture_log_prob(outputs, edges[target_classes], edges[target_classes + 1],
                           target_classes == 0, target_classes == mulaw.NUM_CLASSES - 1,
                           model.log_scale_min)


def sample_categorical(logits: Array, temperature: Array, uniform: Array) -> Array:
  """Draws from softmax(logits / temperature) by inverting its cumulative distribution.

  Args:
    logits: float32 [batch, classes].
    temperature: float32 scalar > 0.
    uniform: float32 [batch] in [0, 1).

  Returns:
    int32 [batch]: class c such that cdf[c - 1] <= uniform * cdf[-1] < cdf[c].
  """
  scaled = (logits - jnp.max(logits, axis=-1, keepdims=True)) / temperature
  cdf = jnp.cumsum(jnp.exp(scaled), axis=-1)
  threshold = uniform[:, None] * cdf[:, -1:]
  # Rounding can put threshold at cdf[-1] (probability ~2^-24); keep the class in range.
  return jnp.minimum(jnp.sum(cdf <= threshold, axis=-1), logits.shape[-1] - 1).astype(jnp.int32)


def sample(model: Any, outputs: Array, temperature: Array, uniforms: Array,
           greedy: bool) -> Array:
  """Draws the next class of every sequence from the head's distribution.

  Softmax: the class by inverse CDF of softmax(logits / temperature) at uniforms[:, 0];
  greedy: the most likely class. Mixture: the component by inverse CDF of its weights at
  uniforms[:, 0], then mean + temperature * scale * logit(uniforms[:, 1]) (the logistic's
  inverse CDF, its scale multiplied by the temperature), quantised to the PCM class;
  greedy: the mean of the most probable component.

  Args:
    model: the WaveNet.
    outputs: float32 [batch, output_size] of the step.
    temperature: float32 scalar > 0 (ignored when greedy).
    uniforms: float32 [batch, UNIFORMS_PER_SAMPLE[model.output]] in [0, 1), or None when
      greedy.
    greedy: take the mode (temperature 0).

  Returns:
    int32 [batch] classes of the model's codec.
  """
  if model.output == 'mulaw_softmax':
    if greedy:
      return jnp.argmax(outputs, axis=-1).astype(jnp.int32)
    return sample_categorical(outputs, temperature, uniforms[:, 0])
  logits, means, log_scales = split_mixture(outputs, model.log_scale_min)
  if greedy:
    component = jnp.argmax(logits, axis=-1)
  else:
    component = sample_categorical(logits, jnp.float32(1.0), uniforms[:, 0])
  mean = jnp.take_along_axis(means, component[:, None], axis=-1)[:, 0]
  value = mean
  if not greedy:
    log_scale = jnp.take_along_axis(log_scales, component[:, None], axis=-1)[:, 0]
    u = jnp.clip(uniforms[:, 1], _UNIFORM_MARGIN, 1.0 - _UNIFORM_MARGIN)
    value = mean + temperature * jnp.exp(log_scale) * (jnp.log(u) - jnp.log1p(-u))
  return codecs.pcm_encode(value, model.num_classes)
