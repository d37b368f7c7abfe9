"""Tests of the μ-law codec (wavenet_jax/mulaw.py)."""
import jax.numpy as jnp
import numpy as np

from wavenet_jax import mulaw


def _audio(n=200_001):
  return np.linspace(-1.0, 1.0, n, dtype=np.float32)


def test_classes_are_int32_in_range_and_cover_all_classes():
  classes = mulaw.encode(_audio())
  assert classes.dtype == np.int32
  assert classes.min() == 0 and classes.max() == mulaw.MU
  assert len(np.unique(classes)) == mulaw.NUM_CLASSES


def test_round_trip_lands_on_a_neighbouring_level():
  """decode(encode(x)) is one of the two quantisation levels around x."""
  audio = _audio()
  levels = mulaw.decode(np.arange(mulaw.NUM_CLASSES))
  assert np.all(np.diff(levels) > 0)
  below = np.clip(np.searchsorted(levels, audio, side='right') - 1, 0, mulaw.MU)
  above = np.clip(below + 1, 0, mulaw.MU)
  decoded = mulaw.decode(mulaw.encode(audio))
  on_level = (np.isclose(decoded, levels[below], atol=1e-7)
              | np.isclose(decoded, levels[above], atol=1e-7))
  assert on_level.all()
  # In the companded domain the error is at most half a quantisation step (1 / μ).
  error = np.abs(mulaw.compress(decoded) - mulaw.compress(audio))
  assert error.max() <= 1.0 / mulaw.MU + 1e-6


def test_levels_round_trip_exactly_and_silence_is_near_zero():
  classes = np.arange(mulaw.NUM_CLASSES)
  np.testing.assert_array_equal(mulaw.encode(mulaw.decode(classes)), classes)
  assert abs(float(mulaw.decode(np.int32(mulaw.NUM_CLASSES // 2)))) < 1e-3
  assert mulaw.decode(classes).dtype == np.float32


def test_values_outside_unit_range_are_clipped():
  classes = mulaw.encode(np.array([-7.0, -1.0, 1.0, 3.5], np.float32))
  np.testing.assert_array_equal(classes, [0, 0, mulaw.MU, mulaw.MU])


def test_numpy_and_jax_agree():
  audio = np.random.default_rng(0).uniform(-1.2, 1.2, 4096).astype(np.float32)
  np_classes = mulaw.encode(audio)
  jax_classes = mulaw.encode(jnp.asarray(audio))
  assert isinstance(jax_classes, jnp.ndarray) and jax_classes.dtype == jnp.int32
  # The float maths may round differently at exact class boundaries; allow +-1 there only.
  mismatch = np.abs(np.asarray(jax_classes) - np_classes)
  assert mismatch.max() <= 1 and (mismatch > 0).mean() < 1e-3
  classes = np.arange(mulaw.NUM_CLASSES, dtype=np.int32)
  np.testing.assert_allclose(np.asarray(mulaw.decode(jnp.asarray(classes))),
                             mulaw.decode(classes), atol=1e-6)
