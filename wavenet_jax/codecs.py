"""Waveforms <-> a WaveNet's integer classes (its inputs and its targets).

Two base codecs, one per output head (`WaveNet.output`):
  'mulaw' (the 'mulaw_softmax' head): 8-bit μ-law companding (mulaw.py), 256 classes.
  'pcm' (the 'mixture_of_logistics' head): linear PCM, num_classes levels (65,536 =
    16 bits); class c stands for the value v_c = (c - N/2) / (N/2) in [-1, 1), so at
    16 bits class c is the int16 sample c - 32768 of a WAV file read as int16 / 32768:
    encoding 16-bit audio loses nothing.

A model trained with pre-emphasis (`WaveNet.preemphasis`, p > 0) models the filtered
waveform x[t] - p x[t - 1]: its codec (`Codec.preemphasis`) filters before encoding and
de-emphasises (the inverse filter) after decoding, so that encode and decode map waveforms,
and `Codec.values` gives what the classes themselves stand for (the model's input values).

The base codecs and `values` work on numpy arrays and on jax arrays (inside jitted code), like
mulaw.py; the filters work on numpy arrays.
"""
import dataclasses
from typing import Any

import jax
import numpy as np

from wavenet_jax import mulaw

# Levels of 16-bit PCM: the classes of the mixture-of-logistics head by default.
PCM16_CLASSES = 2**16


def pcm_encode(audio: Any, num_classes: int = PCM16_CLASSES) -> Any:
  """Waveform -> linear PCM classes.

  Args:
    audio: float array of any shape, nominally in [-1, 1] (values outside are clipped).
    num_classes: even number of levels.

  Returns:
    int32 array of the same shape: round(audio * N/2) + N/2, clipped to [0, N - 1].
  """
  xp = mulaw.array_module(audio)
  half = num_classes // 2
  levels = xp.floor(xp.asarray(audio, dtype=xp.float32) * half + 0.5)
  return (xp.clip(levels, -half, half - 1) + half).astype(xp.int32)


def pcm_decode(classes: Any, num_classes: int = PCM16_CLASSES) -> Any:
  """Linear PCM classes -> float32 waveform (c - N/2) / (N/2) in [-1, 1)."""
  xp = mulaw.array_module(classes)
  half = num_classes // 2
  return (xp.asarray(classes, dtype=xp.float32) - half) / half


# Samples per block of `deemphasize` (the inverse filter as one matrix product per block).
_DEEMPHASIS_BLOCK = 256


def preemphasize(audio: np.ndarray, coefficient: float, previous: Any = 0.0) -> np.ndarray:
  """The pre-emphasis filter y[t] = x[t] - coefficient x[t - 1] along the last axis.

  Args:
    audio: float [..., time].
    coefficient: in [0, 1); 0 returns the audio unchanged.
    previous: x[-1], the sample before the first (a scalar or [...]).

  Returns:
    float32 [..., time].
  """
  audio = np.asarray(audio, np.float32)
  if not coefficient:
    return audio
  before = np.broadcast_to(np.asarray(previous, np.float32), audio.shape[:-1])[..., None]
  return audio - np.float32(coefficient) * np.concatenate([before, audio[..., :-1]], axis=-1)


def deemphasize(audio: np.ndarray, coefficient: float, previous: Any = 0.0) -> np.ndarray:
  """The inverse of `preemphasize`: y[t] = x[t] + coefficient y[t - 1] along the last axis.

  A long signal filtered in pieces equals the whole filtered at once when each piece is
  given the previous piece's last output sample as `previous`.

  Args:
    audio: float [..., time].
    coefficient: in [0, 1); 0 returns the audio unchanged.
    previous: y[-1], the filter's output before the first sample (a scalar or [...]).

  Returns:
    float32 [..., time].
  """
  audio = np.asarray(audio, np.float32)
  if not coefficient:
    return audio
  x = audio.astype(np.float64)
  lags = np.arange(_DEEMPHASIS_BLOCK)[:, None] - np.arange(_DEEMPHASIS_BLOCK)[None, :]
  # Within a block y = M x + coefficient^(i + 1) y_before, M[i, j] = coefficient^(i - j), j <= i.
  response = np.where(lags >= 0, float(coefficient) ** np.maximum(lags, 0), 0.0)
  decay = float(coefficient) ** np.arange(1, _DEEMPHASIS_BLOCK + 1)
  state = np.broadcast_to(np.asarray(previous, np.float64), x.shape[:-1])
  y = np.empty_like(x)
  for start in range(0, x.shape[-1], _DEEMPHASIS_BLOCK):
    block = x[..., start:start + _DEEMPHASIS_BLOCK]
    n = block.shape[-1]
    y[..., start:start + n] = block @ response[:n, :n].T + state[..., None] * decay[:n]
    state = y[..., start + n - 1]
  return y.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Codec:
  """One codec at one number of classes, with the model's pre-emphasis.

  Attributes:
    kind: 'mulaw' or 'pcm'.
    num_classes: classes (μ-law: μ + 1; PCM: levels, even).
    preemphasis: the pre-emphasis coefficient p in [0, 1) the classes are of (0: none).
  """
  kind: str
  num_classes: int
  preemphasis: float = 0.0

  def __post_init__(self):
    if self.kind not in ('mulaw', 'pcm'):
      raise ValueError(f"codec kind must be 'mulaw' or 'pcm', got {self.kind!r}.")
    if self.num_classes < 2 or (self.kind == 'pcm' and self.num_classes % 2):
      raise ValueError(f'a {self.kind} codec needs an even number of classes >= 2, got '
                       f'{self.num_classes}.')
    if not 0.0 <= self.preemphasis < 1.0:
      raise ValueError(f'preemphasis must be in [0, 1) (0: off), got {self.preemphasis}.')

  def encode(self, audio: Any, previous: Any = 0.0) -> Any:
    """float waveform [..., time] -> int32 classes [..., time] (numpy or jax, like the input).

    Args:
      audio: float [..., time], nominally in [-1, 1].
      previous: the waveform's sample before the first (a scalar or [...]): the filter's
        state, for a crop that starts inside a file; only read with pre-emphasis (which
        takes numpy input).

    Raises:
      ValueError: for NaN in a concrete (not traced) waveform.
    """
    if not isinstance(audio, jax.core.Tracer) and np.isnan(np.asarray(audio)).any():
      raise ValueError('the waveform holds NaN samples: they have no class.')
    if self.preemphasis:
      audio = preemphasize(audio, self.preemphasis, previous)
    if self.kind == 'mulaw':
      return mulaw.encode(audio, self.num_classes - 1)
    return pcm_encode(audio, self.num_classes)

  def values(self, classes: Any) -> Any:
    """int classes [...] -> float32 [...] in [-1, 1]: the (pre-emphasised) values they stand for.

    What the model reads as its input; not de-emphasised. numpy or jax, like the input.
    """
    if self.kind == 'mulaw':
      return mulaw.decode(classes, self.num_classes - 1)
    return pcm_decode(classes, self.num_classes)

  def decode(self, classes: Any, previous: Any = 0.0) -> Any:
    """int classes [..., time] -> float32 waveform [..., time], de-emphasised.

    Args:
      classes: int [..., time] (numpy, or jax without pre-emphasis).
      previous: the waveform's sample before the first (a scalar or [...]): the inverse
        filter's state; only read with pre-emphasis.
    """
    if self.preemphasis:
      return deemphasize(self.values(classes), self.preemphasis, previous)
    return self.values(classes)

  def decoder(self) -> 'Decoder':
    """A decoder of consecutive chunks of the same rows (see `Decoder`)."""
    return Decoder(self)

  @property
  def silence_class(self) -> int:
    """The class of (almost) 0.0: what padding and the sampler's start encode to."""
    return self.num_classes // 2


class Decoder:
  """Classes -> waveform, chunk after chunk: int [rows, n] -> float32 [rows, n].

  Decodes with the codec, each row's de-emphasis state carried over to its next chunk: the
  chunks, concatenated, equal the whole decoded at once.
  """

  def __init__(self, codec: Codec):
    self._codec = codec
    self._last = 0.0  # Each row's last output sample: the inverse filter's state.

  def __call__(self, classes: np.ndarray) -> np.ndarray:
    waveform = self._codec.decode(classes, self._last)
    self._last = waveform[..., -1]
    return waveform
