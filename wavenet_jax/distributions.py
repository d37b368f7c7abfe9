"""A WaveNet's output heads: the next-sample distributions, their likelihoods and sampling.

One class per head (`Head`); `make` builds one from the model's fields, and `HEADS` is
the one place a head is named by string (a new head: one class and one entry there).

`MulawSoftmax` ('mulaw_softmax', the paper's): the outputs are logits [..., num_classes]
of a softmax over μ-law classes, whose class embedding is the model's input.

`MixtureOfLogistics` ('mixture_of_logistics'; PixelCNN++, Salimans et al. 2017; Parallel
WaveNet), whose input is the previous sample's value: the outputs
are [..., 3 K] = (mixture logits, means, log scales) of K logistic distributions over
the sample value, discretized to the PCM codec's N bins (`codecs`): class c (value
v_c = (c - N/2) / (N/2)) has the mass of [v_c - 1/N, v_c + 1/N]; the first bin takes all
the mass below, the last all above. Log scales are floored at `log_scale_min`.

The mass of an interval [lo, hi] under logistic(m, s), with a = (hi - m) / s and
b = (lo - m) / s, is σ(a) - σ(b) = σ(a) σ(-b) (1 - e^-(a - b)); its logarithm
log σ(a) + log σ(-b) + log(-expm1(-(hi - lo) / s)) has no cancellation anywhere (neither
for bins of vanishing mass far in a tail nor for scales much wider than a bin), so no
density approximation is needed as a fallback. Everything here runs in float32.

Comparable bits: `Head.mulaw_log_prob` gives the probability of the target's μ-law class, for
the mixture the mass of all PCM bins that μ-law-encode to that class (so the edges of
μ-law class k lie at PCM bin edges), which is what a softmax model is scored on.
"""
import abc
import dataclasses
import functools
import math
from typing import ClassVar, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from wavenet_jax import codecs
from wavenet_jax import mulaw

Array = jax.Array

# The lowest positive temperature accepted. A subnormal one (< 1.2e-38) is flushed to 0 by
# XLA and 0 / 0 gives NaN probabilities (every sample class 0: a constant -1 waveform); any
# temperature this low is greedy in effect, so 0 (greedy) is the value for that.
MIN_TEMPERATURE = 1e-3
# Uniforms are kept this far inside (0, 1), so the logistic variate stays finite.
_UNIFORM_MARGIN = 1e-5


def check_temperature(temperature: float) -> None:
  """Raises ValueError unless temperature is 0 (greedy) or finite and >= MIN_TEMPERATURE."""
  if not (temperature == 0 or (math.isfinite(temperature) and temperature >= MIN_TEMPERATURE)):
    raise ValueError(f'temperature must be 0 (greedy) or finite and >= {MIN_TEMPERATURE}, got '
                     f'{temperature}.')


def logistic_variate(uniform: Array) -> Array:
  """The standard logistic's inverse CDF log(u / (1 - u)) of float32 uniforms [...] in [0, 1)
  (kept _UNIFORM_MARGIN inside (0, 1))."""
  u = jnp.clip(uniform, _UNIFORM_MARGIN, 1.0 - _UNIFORM_MARGIN)
  return jnp.log(u) - jnp.log1p(-u)


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



@dataclasses.dataclass(frozen=True)
class Head(abc.ABC):
  """An output head: what the model's outputs [..., output_size] mean.

  Attributes:
    num_classes: classes of the head's codec (its inputs and targets).
  """
  num_classes: int
  # The head's name in config.model.output / WaveNet.output.
  name: ClassVar[str]
  # The codec of its classes (`codecs.Codec` kind) and its default number of classes.
  codec_kind: ClassVar[str]
  default_classes: ClassVar[int]
  # Uniform random numbers each sampled value needs.
  uniforms_per_sample: ClassVar[int]
  # The model's input is the previous sample's value (True) or its class's embedding.
  value_input: ClassVar[bool]

  def __post_init__(self):
    codecs.Codec(self.codec_kind, self.num_classes)  # Checks the number of classes.

  @classmethod
  def from_fields(cls, num_classes: Optional[int], num_mixtures: int,
                  log_scale_min: float) -> 'Head':
    """The head of a model's fields (those it does not use are ignored)."""
    del num_mixtures, log_scale_min
    return cls(cls.default_classes if num_classes is None else num_classes)

  @property
  def codec(self) -> codecs.Codec:
    """How waveforms map to the head's classes."""
    return codecs.Codec(self.codec_kind, self.num_classes)

  @property
  @abc.abstractmethod
  def output_size(self) -> int:
    """Model outputs per position."""

  @abc.abstractmethod
  def log_prob(self, outputs: Array, targets: Array) -> Array:
    """Log-probability in nats of each target class.

    Args:
      outputs: float [..., output_size] head outputs (e.g. logits[:, :-1]).
      targets: int32 [...] classes of the head's codec (e.g. audio[:, 1:]).

    Returns:
      float32 [...] ln p(target).
    """

  @abc.abstractmethod
  def mulaw_log_prob(self, outputs: Array, targets: Array) -> Array:
    """Log-probability in nats of the μ-law class of each target: comparable across heads.

    Args, returns: as `log_prob`.
    """

  @abc.abstractmethod
  def sample(self, outputs: Array, temperature: Array, uniforms: Optional[Array],
             greedy: bool) -> Array:
    """Draws the next class of every sequence.

    Args:
      outputs: float32 [batch, output_size] of the step.
      temperature: float32 scalar > 0 (ignored when greedy; see `check_temperature`).
      uniforms: float32 [batch, uniforms_per_sample] in [0, 1), or None when greedy.
      greedy: take the mode (temperature 0).

    Returns:
      int32 [batch] classes of the head's codec.
    """


@dataclasses.dataclass(frozen=True)
class MulawSoftmax(Head):
  """Logits of a softmax over μ-law classes; the input is the class's embedding."""
  name = 'mulaw_softmax'
  codec_kind = 'mulaw'
  default_classes = mulaw.NUM_CLASSES
  uniforms_per_sample = 1  # The class.
  value_input = False

  @property
  def output_size(self) -> int:
    return self.num_classes

  def log_prob(self, outputs: Array, targets: Array) -> Array:
    log_probs = jax.nn.log_softmax(outputs.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]

  def mulaw_log_prob(self, outputs: Array, targets: Array) -> Array:
    """`log_prob`: the classes are μ-law's."""
    return self.log_prob(outputs, targets)

  def sample(self, outputs: Array, temperature: Array, uniforms: Optional[Array],
             greedy: bool) -> Array:
    """The class by inverse CDF of softmax(logits / temperature) at uniforms[:, 0]; greedy:
    the most likely class."""
    if greedy:
      return jnp.argmax(outputs, axis=-1).astype(jnp.int32)
    return sample_categorical(outputs, temperature, uniforms[:, 0])


@dataclasses.dataclass(frozen=True)
class MixtureOfLogistics(Head):
  """A discretized mixture of logistics over linear PCM classes (see the module docstring).

  Attributes:
    num_mixtures: logistic components.
    log_scale_min: floor of the log scales (finite).
  """
  num_mixtures: int = 10
  log_scale_min: float = -14.0
  name = 'mixture_of_logistics'
  codec_kind = 'pcm'
  default_classes = codecs.PCM16_CLASSES
  uniforms_per_sample = 2  # The component and the logistic variate.
  value_input = True

  def __post_init__(self):
    super().__post_init__()
    if self.num_mixtures < 1:
      raise ValueError(f'num_mixtures must be >= 1, got {self.num_mixtures}.')
    if not math.isfinite(self.log_scale_min):
      raise ValueError(f'log_scale_min must be finite, got {self.log_scale_min}.')

  @classmethod
  def from_fields(cls, num_classes: Optional[int], num_mixtures: int,
                  log_scale_min: float) -> 'Head':
    return cls(cls.default_classes if num_classes is None else num_classes, num_mixtures,
               log_scale_min)

  @property
  def output_size(self) -> int:
    return 3 * self.num_mixtures

  def log_prob(self, outputs: Array, targets: Array) -> Array:
    values = codecs.pcm_decode(targets, self.num_classes)
    return _mixture_log_prob(outputs, values - 1.0 / self.num_classes,
                             values + 1.0 / self.num_classes, targets == 0,
                             targets == self.num_classes - 1, self.log_scale_min)

  def mulaw_log_prob(self, outputs: Array, targets: Array) -> Array:
    """The mass of every PCM bin whose value μ-law-encodes to the target's class (see
    `pcm_to_mulaw_table`)."""
    mulaw_classes, edges = pcm_to_mulaw_table(self.num_classes)
    target_classes = jnp.asarray(mulaw_classes)[targets]
    edges = jnp.asarray(edges)
    return _mixture_log_prob(outputs, edges[target_classes], edges[target_classes + 1],
                             target_classes == 0, target_classes == mulaw.NUM_CLASSES - 1,
                             self.log_scale_min)

  def sample(self, outputs: Array, temperature: Array, uniforms: Optional[Array],
             greedy: bool) -> Array:
    """The component by inverse CDF of its weights at uniforms[:, 0], then mean +
    temperature * scale * logit(uniforms[:, 1]) (the logistic's inverse CDF, its scale
    multiplied by the temperature), quantised to the PCM class; greedy: the mean of the
    most probable component."""
    logits, means, log_scales = split_mixture(outputs, self.log_scale_min)
    if greedy:
      component = jnp.argmax(logits, axis=-1)
    else:
      component = sample_categorical(logits, jnp.float32(1.0), uniforms[:, 0])
    mean = jnp.take_along_axis(means, component[:, None], axis=-1)[:, 0]
    value = mean
    if not greedy:
      log_scale = jnp.take_along_axis(log_scales, component[:, None], axis=-1)[:, 0]
      value = mean + temperature * jnp.exp(log_scale) * logistic_variate(uniforms[:, 1])
    return codecs.pcm_encode(value, self.num_classes)


# The heads by name: the only place a head is named by string.
HEADS = {head.name: head for head in (MulawSoftmax, MixtureOfLogistics)}
OUTPUTS = tuple(HEADS)


@functools.lru_cache(maxsize=64)
def make(output: str, num_classes: Optional[int] = None, num_mixtures: int = 10,
         log_scale_min: float = -14.0) -> Head:
  """The head named `output` (a key of HEADS) from a model's fields.

  Args:
    output: config.model.output / WaveNet.output.
    num_classes: classes of its codec; None: the head's default.
    num_mixtures, log_scale_min: of the mixture head (others ignore them).

  Raises:
    ValueError: for an unknown name or fields the head cannot take (one line naming the field).
  """
  if output not in HEADS:
    raise ValueError(f'output must be one of {OUTPUTS}, got {output!r}.')
  return HEADS[output].from_fields(num_classes, num_mixtures, log_scale_min)


class NextSampleNats(NamedTuple):
  """Σ weights * -ln p of next samples, float32 scalars: of the head's classes (`nats`) and
  of their μ-law classes (`mulaw_nats`, the unit every head shares)."""
  nats: Array
  mulaw_nats: Array


def next_sample_nats(head: Head, outputs: Array, audio: Array, weights: Array) -> NextSampleNats:
  """Scores each position's prediction of the next sample: the loss and validation figures.

  Args:
    head: the model's head (`WaveNet.distribution`).
    outputs: float [batch, T, output_size], the model's outputs on `audio` (outputs[:, t]
      is the distribution of audio[:, t + 1]).
    audio: int32 [batch, T] classes of the head's codec.
    weights: float32 [batch, T - 1], each prediction's weight (e.g. mask[:, 1:]).

  Returns:
    The weighted sums (`NextSampleNats`); a jitted caller that reads one leaves the other
    uncomputed.
  """
  outputs, targets = outputs[:, :-1], audio[:, 1:]
  # For the softmax both are one computation (its classes are μ-law's): XLA computes it once.
  return NextSampleNats(jnp.sum(-head.log_prob(outputs, targets) * weights),
                        jnp.sum(-head.mulaw_log_prob(outputs, targets) * weights))
