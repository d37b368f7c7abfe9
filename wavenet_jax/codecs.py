"""Waveforms <-> a WaveNet's integer classes (its inputs and its targets).

Two codecs, one per output head (`WaveNet.output`):
  'mulaw' (the 'mulaw_softmax' head): 8-bit μ-law companding (mulaw.py), 256 classes.
  'pcm' (the 'mixture_of_logistics' head): linear PCM, num_classes levels (65,536 =
    16 bits); class c stands for the value v_c = (c - N/2) / (N/2) in [-1, 1), so at
    16 bits class c is the int16 sample c - 32768 of a WAV file read as int16 / 32768:
    encoding 16-bit audio loses nothing.

Works on numpy arrays and on jax arrays (inside jitted code), like mulaw.py.
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


@dataclasses.dataclass(frozen=True)
class Codec:
  """One codec at one number of classes.

  Attributes:
    kind: 'mulaw' or 'pcm'.
    num_classes: classes (μ-law: μ + 1; PCM: levels, even).
  """
  kind: str
  num_classes: int

  def __post_init__(self):
    if self.kind not in ('mulaw', 'pcm'):
      raise ValueError(f"codec kind must be 'mulaw' or 'pcm', got {self.kind!r}.")
    if self.num_classes < 2 or (self.kind == 'pcm' and self.num_classes % 2):
      raise ValueError(f'a {self.kind} codec needs an even number of classes >= 2, got '
                       f'{self.num_classes}.')

  def encode(self, audio: Any) -> Any:
    """float waveform [...] -> int32 classes [...] (numpy or jax, like the input).

    Raises ValueError for NaN in a concrete (not traced) waveform.
    """
    if not isinstance(audio, jax.core.Tracer) and np.isnan(np.asarray(audio)).any():
      raise ValueError('the waveform holds NaN samples: they have no class.')
    if self.kind == 'mulaw':
      return mulaw.encode(audio, self.num_classes - 1)
    return pcm_encode(audio, self.num_classes)

  def decode(self, classes: Any) -> Any:
    """int classes [...] -> float32 waveform [...] in [-1, 1]."""
    if self.kind == 'mulaw':
      return mulaw.decode(classes, self.num_classes - 1)
    return pcm_decode(classes, self.num_classes)

  @property
  def silence_class(self) -> int:
    """The class of (almost) 0.0: what padding and the sampler's start encode to."""
    return self.num_classes // 2
