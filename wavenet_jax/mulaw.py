"""μ-law companding and 8-bit quantisation (ITU-T G.711 style, μ = 255).

The one home of the codec. Works on numpy arrays (input pipeline, CLIs) and on
jax arrays (inside jitted code): the array module is taken from the argument.
"""
from typing import Any

import jax
import numpy as np

MU = 255
NUM_CLASSES = MU + 1


def array_module(x: Any):
  """jax.numpy for a jax array (also a tracer inside jitted code), else numpy."""
  return jax.numpy if isinstance(x, jax.Array) else np


def compress(audio: Any, mu: int = MU) -> Any:
  """f(x) = sign(x) ln(1 + μ|x|) / ln(1 + μ), input clipped to [-1, 1].

  Args:
    audio: float array of any shape, nominally in [-1, 1].
    mu: the μ parameter.

  Returns:
    float32 array of the same shape, in [-1, 1].
  """
  xp = array_module(audio)
  audio = xp.clip(xp.asarray(audio, dtype=xp.float32), -1.0, 1.0)
  return xp.sign(audio) * xp.log1p(mu * xp.abs(audio)) / float(np.log1p(mu))


def expand(companded: Any, mu: int = MU) -> Any:
  """Inverse of `compress`: float32 in [-1, 1] -> float32 in [-1, 1]."""
  xp = array_module(companded)
  companded = xp.asarray(companded, dtype=xp.float32)
  return xp.sign(companded) * xp.expm1(xp.abs(companded) * float(np.log1p(mu))) / mu


def encode(audio: Any, mu: int = MU) -> Any:
  """Waveform -> μ-law classes.

  Args:
    audio: float array of any shape in [-1, 1] (values outside are clipped).
    mu: the μ parameter; there are mu + 1 classes.

  Returns:
    int32 array of the same shape, classes in [0, mu].
  """
  xp = array_module(audio)
  companded = compress(audio, mu)
  classes = xp.floor((companded + 1.0) / 2.0 * mu + 0.5)
  return xp.clip(classes, 0, mu).astype(xp.int32)


def decode(classes: Any, mu: int = MU) -> Any:
  """μ-law classes -> waveform.

  Args:
    classes: int array of any shape with values in [0, mu].
    mu: the μ parameter.

  Returns:
    float32 array of the same shape in [-1, 1].
  """
  xp = array_module(classes)
  companded = xp.asarray(classes, dtype=xp.float32) / mu * 2.0 - 1.0
  return expand(companded, mu)
