"""Tests of wavenet_jax/audio_metrics.py (synthetic signals, seconds)."""
import ml_collections
import numpy as np
import pytest

from wavenet_jax import audio_metrics

SAMPLE_RATE = 16000


def mel_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
      dict(n_mels=80, hop_length=256, n_fft=1024, fmin=0.0, fmax=8000.0))


def noise(seconds: float = 0.5, seed: int = 0) -> np.ndarray:
  return (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * SAMPLE_RATE))
          ).astype(np.float32)


def sine(hz: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
  t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
  return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_log_mel_distance_of_identical_signals_is_zero():
  audio = noise()
  assert audio_metrics.log_mel_distance_db(audio, audio, SAMPLE_RATE, mel_config()) == 0.0


def test_log_mel_distance_of_a_gain_is_the_gain_in_db():
  audio = noise()
  distance = audio_metrics.log_mel_distance_db(audio, 0.5 * audio, SAMPLE_RATE, mel_config())
  assert distance == pytest.approx(20 * np.log10(2.0), abs=0.01)


def test_log_mel_distance_uses_the_common_length():
  audio = noise(1.0)
  assert audio_metrics.log_mel_distance_db(audio, audio[:8000], SAMPLE_RATE, mel_config()) == 0.0


def test_floor_hides_differences_below_it_only():
  config = mel_config()
  silence = np.zeros(8000, np.float32)
  hiss = 3e-4 * noise(0.5)  # |mel| between audio.log_mel's floor (-100 dB) and -80 dB.
  assert audio_metrics.log_mel_distance_db(silence, hiss, SAMPLE_RATE, config) > 3.0
  assert audio_metrics.log_mel_distance_db(silence, hiss, SAMPLE_RATE, config,
                                           floor_db=-80.0) == 0.0
  assert audio_metrics.mel_cepstral_distortion_db(silence, hiss, SAMPLE_RATE, config,
                                                  floor_db=-80.0) == 0.0
  audio = noise()
  distance = audio_metrics.log_mel_distance_db(audio, 0.5 * audio, SAMPLE_RATE, config,
                                               floor_db=-80.0)
  assert distance == pytest.approx(20 * np.log10(2.0), abs=0.01)


def test_mel_cepstral_distortion_ignores_level_but_not_timbre():
  audio = noise()
  config = mel_config()
  assert audio_metrics.mel_cepstral_distortion_db(audio, audio, SAMPLE_RATE, config) == 0.0
  # A gain shifts every ln |mel| bin equally: only c_0, which the MCD leaves out, changes.
  assert audio_metrics.mel_cepstral_distortion_db(audio, 0.5 * audio, SAMPLE_RATE, config) == (
      pytest.approx(0.0, abs=1e-3))
  other = audio_metrics.mel_cepstral_distortion_db(audio, sine(440.0, 0.5), SAMPLE_RATE, config)
  assert other > 10.0


def test_mel_cepstra_of_a_flat_log_mel_are_zero():
  cepstra = audio_metrics.mel_cepstra(np.full((3, 80), -2.0, np.float32), num_coefficients=24)
  assert cepstra.shape == (3, 24)
  np.testing.assert_allclose(cepstra, 0.0, atol=1e-9)


def test_count_model_of_a_periodic_sequence_is_nearly_certain():
  sequence = np.tile(np.array([0, 5, 200, 7, 5, 9]), 500)
  bits = audio_metrics.count_model_bits_per_sample([sequence], [sequence[:60]], order=2, alpha=0.01)
  assert bits < 0.05


def test_count_model_of_uniform_noise_costs_eight_bits():
  rng = np.random.default_rng(0)
  train, held_out = rng.integers(0, 256, 200_000), rng.integers(0, 256, 20_000)
  bits = audio_metrics.count_model_bits_per_sample([train], [held_out], order=1, alpha=0.5)
  assert bits == pytest.approx(8.0, abs=0.3)


def test_count_model_uses_the_context():
  # x[t] = x[t - 1] + 1 (mod 256): order 0 knows nothing, order 1 everything.
  sequence = np.arange(5000) % 256
  order_0 = audio_metrics.count_model_bits_per_sample([sequence], [sequence], order=0)
  order_1 = audio_metrics.count_model_bits_per_sample([sequence], [sequence], order=1, alpha=0.001)
  assert order_0 == pytest.approx(8.0, abs=0.01)
  assert order_1 < 0.05


@pytest.mark.parametrize('hz', [110.0, 220.0])
def test_voiced_f0_of_a_sine_is_its_frequency(hz):
  f0 = audio_metrics.voiced_f0_hz(sine(hz), SAMPLE_RATE)
  assert len(f0) > 10
  assert np.mean(f0) == pytest.approx(hz, rel=0.02)


def test_voiced_f0_of_silence_is_empty():
  assert len(audio_metrics.voiced_f0_hz(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)) == 0


def test_griffin_lim_is_aligned_with_the_original():
  audio = noise(1.0) * np.repeat(np.random.default_rng(1).uniform(0, 1, 16), 1000)
  config = mel_config()
  log_mel = audio_metrics.audio_lib.log_mel(audio.astype(np.float32), SAMPLE_RATE, config)
  reconstruction = audio_metrics.griffin_lim_from_log_mel(log_mel, SAMPLE_RATE, config,
                                                          len(audio), 16)
  assert reconstruction.shape == audio.shape
  aligned = audio_metrics.log_mel_distance_db(audio, reconstruction, SAMPLE_RATE, config)
  for shift in (-128, 128):  # Half a hop either way: librosa's and audio.log_mel's framing.
    shifted = np.roll(reconstruction, shift)
    assert aligned < audio_metrics.log_mel_distance_db(audio, shifted, SAMPLE_RATE, config) - 0.5
