"""Tests of wavenet_jax/audio_metrics.py (synthetic signals and a bundled utterance, seconds)."""
import functools
import os
import sys

import ml_collections
import numpy as np
import pytest

from wavenet_jax import audio as audio_lib
from wavenet_jax import audio_metrics
from wavenet_jax import mulaw

SAMPLE_RATE = 16000
# A 2.9 s utterance of the bundled corpus (the shared corpus's awb_000, as FLAC).
UTTERANCE = os.path.join(os.path.dirname(audio_lib.__file__), 'data', 'speech', 'awb',
                         'awb_000.flac')


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


@functools.lru_cache(maxsize=1)
def utterance() -> np.ndarray:
  return audio_lib.load_audio(UTTERANCE, SAMPLE_RATE)


def white_noise_like(audio: np.ndarray, relative_db: float) -> np.ndarray:
  """White noise alone (no speech) at relative_db of the RMS of `audio`."""
  noise = np.random.default_rng(0).standard_normal(len(audio))
  noise *= np.sqrt(np.mean(np.square(audio))) * 10 ** (relative_db / 20) / np.std(noise)
  return noise.astype(np.float32)


def test_pesq_and_stoi_of_identical_signals_are_their_maxima():
  audio = utterance()
  assert audio_metrics.wideband_pesq(audio, audio, SAMPLE_RATE) == pytest.approx(4.64, abs=0.01)
  assert audio_metrics.stoi(audio, audio, SAMPLE_RATE) == pytest.approx(1.0, abs=1e-6)


def test_pesq_and_stoi_rank_codec_griffin_lim_and_noise():
  # Issue 16's orientation: 8-bit μ-law 3.8-4.2 / 1.00, Griffin-Lim 2.3-2.6 / 0.92-0.94,
  # white noise at -26 dB about 1.05. This utterance: 4.12 / 1.00, 2.15 / 0.95, 1.03 / 0.41.
  audio = utterance()
  config = mel_config()
  griffin_lim = audio_metrics.griffin_lim_from_log_mel(
      audio_lib.log_mel(audio, SAMPLE_RATE, config), SAMPLE_RATE, config, len(audio), 32)
  estimates = (mulaw.decode(mulaw.encode(audio)), griffin_lim, white_noise_like(audio, -26.0))
  pesq = [audio_metrics.wideband_pesq(audio, estimate, SAMPLE_RATE) for estimate in estimates]
  stoi = [audio_metrics.stoi(audio, estimate, SAMPLE_RATE) for estimate in estimates]
  assert pesq[0] > pesq[1] + 1.0 and pesq[1] > pesq[2] + 0.5, pesq
  assert 3.5 < pesq[0] < 4.5 and 1.5 < pesq[1] < 2.9 and pesq[2] < 1.3, pesq
  assert stoi[0] > 0.99 and 0.88 < stoi[1] < 0.98 and stoi[2] < 0.6, stoi


def test_pesq_resamples_other_rates_to_16_khz():
  audio = utterance()
  degraded = mulaw.decode(mulaw.encode(audio))
  at_16k = audio_metrics.wideband_pesq(audio, degraded, SAMPLE_RATE)
  # The pesq package itself accepts only 8 and 16 kHz.
  at_22k = audio_metrics.wideband_pesq(audio_lib.resample(audio, SAMPLE_RATE, 22050),
                                       audio_lib.resample(degraded, SAMPLE_RATE, 22050), 22050)
  assert at_22k == pytest.approx(at_16k, abs=0.2)
  assert audio_metrics.stoi(audio_lib.resample(audio, SAMPLE_RATE, 22050),
                            audio_lib.resample(degraded, SAMPLE_RATE, 22050), 22050) > 0.99


def test_pesq_and_stoi_use_the_common_length():
  audio = utterance()
  degraded = mulaw.decode(mulaw.encode(audio))
  longer = np.concatenate([degraded, white_noise_like(audio, 0.0)[:SAMPLE_RATE]])
  for metric in (audio_metrics.wideband_pesq, audio_metrics.stoi):
    assert metric(audio, longer, SAMPLE_RATE) == metric(audio, degraded, SAMPLE_RATE)


@pytest.mark.parametrize('metric', ['wideband_pesq', 'stoi'])
@pytest.mark.parametrize('make_input, problem', [
    (lambda audio: (audio, np.stack([audio, audio])), r'\[time\] waveform, got shape \(2, '),
    (lambda audio: (audio, np.zeros(0, np.float32)), r'\[time\] waveform, got shape \(0,\)'),
    (lambda audio: (audio, np.where(np.arange(len(audio)) == 99, np.nan, audio)), 'NaN'),
    (lambda audio: (audio, np.zeros_like(audio)), 'the estimate is digital silence'),
    (lambda audio: (np.zeros_like(audio), audio), 'the reference is digital silence'),
])
def test_unscorable_input_raises_a_one_line_value_error(metric, make_input, problem):
  with pytest.raises(ValueError, match=problem) as raised:
    getattr(audio_metrics, metric)(*make_input(utterance()), SAMPLE_RATE)
  assert '\n' not in str(raised.value)


def test_too_short_input_names_the_problem():
  short = utterance()[:1600]
  with pytest.raises(ValueError, match=r'0\.10 s\): Buffer needs to be at least 1/4 of a second'):
    audio_metrics.wideband_pesq(short, short, SAMPLE_RATE)
  with pytest.raises(ValueError, match=r'0\.10 s\): fewer than 30 frames'):
    audio_metrics.stoi(short, short, SAMPLE_RATE)
  # The utterance's first 0.31 s: its 0.15 s of leading silence and the onset.
  onset = utterance()[:5000]
  with pytest.raises(ValueError, match=r'0\.31 s\): No utterances detected'):
    audio_metrics.wideband_pesq(onset, onset, SAMPLE_RATE)


@pytest.mark.parametrize('metric, package', [('wideband_pesq', 'pesq'), ('stoi', 'pystoi')])
def test_a_missing_package_names_the_extra(monkeypatch, metric, package):
  monkeypatch.setitem(sys.modules, package, None)  # `import package` raises ImportError.
  with pytest.raises(ValueError, match=rf"needs the {package} package: pip install "
                                       r"'wavenet-jax\[metrics\]'"):
    getattr(audio_metrics, metric)(utterance(), utterance(), SAMPLE_RATE)


def test_f0_agreement_of_a_known_shift_and_voicing():
  reference = np.array([100.0, 110.0, 120.0, 130.0, 140.0, 150.0])
  reference_voiced = np.array([True, True, True, True, False, False])
  estimate_voiced = np.array([True, True, True, False, False, True])
  # 200 cents up (x 2^(1/6)) where both are voiced, garbage where either is not.
  estimate = np.array([*(reference[:3] * 2**(200 / 1200)), 1.0, 1.0, 1.0])
  figures = audio_metrics.f0_agreement(reference, reference_voiced, estimate, estimate_voiced)
  assert figures['voiced_in_both'] == 3
  assert figures['f0_rmse_cents'] == pytest.approx(200.0)
  assert figures['f0_correlation'] == pytest.approx(1.0)
  assert figures['voicing_agreement'] == pytest.approx(4 / 6)  # Frames 3 and 5 disagree.
  # An inverted contour correlates negatively; no frame voiced in both: no F0 figure.
  inverted = audio_metrics.f0_agreement(reference, reference_voiced, reference[::-1],
                                        reference_voiced)
  assert inverted['f0_correlation'] == pytest.approx(-1.0, abs=0.01)
  none = audio_metrics.f0_agreement(reference, reference_voiced, estimate, ~reference_voiced)
  assert none['f0_rmse_cents'] is None and none['f0_correlation'] is None
  assert none['voicing_agreement'] == 0.0
