"""Tests of wavenet_jax/features.py: a checkpoint's mel features object."""
import ml_collections
import numpy as np
import pytest

from experiments import default
from wavenet_jax import audio
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.features import LogMel

RATE = 8000
N_MELS = 20


def _features(hop_length: int = 64) -> LogMel:
  data = default.get_config().data
  data.sample_rate = RATE
  data.mel.update(n_mels=N_MELS, hop_length=hop_length, n_fft=256, fmin=0.0, fmax=4000.0)
  info = DatasetInfo(sample_rate=RATE, speakers=(), num_train_examples=1,
                     num_validation_examples=0,
                     mel_mean=np.linspace(-8, -2, N_MELS).astype(np.float32),
                     mel_std=np.linspace(1, 3, N_MELS).astype(np.float32))
  return LogMel.from_config(data, info)


def test_features_are_the_log_mel_normalised_with_the_checkpoint_statistics():
  features = _features()
  clip = np.sin(2 * np.pi * 300 * np.arange(4000) / RATE).astype(np.float32)
  hop = features.hop_length
  computed = features(clip, start=hop, num_samples=10 * hop)
  assert computed.dtype == np.float32 and computed.shape == (10, N_MELS)
  mel_config = ml_collections.ConfigDict(dict(n_mels=N_MELS, hop_length=hop, n_fft=256,
                                              fmin=0.0, fmax=4000.0))
  expected = ((audio.log_mel(clip, RATE, mel_config, hop, 10 * hop) - features.mean)
              / features.std).astype(np.float32)
  np.testing.assert_array_equal(computed, expected)
  assert features(clip).shape == (features.num_frames(len(clip)), N_MELS)


@pytest.mark.parametrize('num_samples, frames', [(0, 0), (1, 1), (64, 1), (65, 2), (640, 10)])
def test_frame_count_covers_every_sample(num_samples, frames):
  assert _features().num_frames(num_samples) == frames
  assert len(_features()(np.zeros(num_samples, np.float32))) == frames


def test_the_convention_is_stated():
  features = _features(hop_length=128)
  assert (features.sample_rate, features.n_fft, features.hop_length, features.n_mels,
          features.fmin, features.fmax) == (RATE, 256, 128, N_MELS, 0.0, 4000.0)
  assert (features.window, features.mel_scale, features.mel_norm, features.log_base,
          features.floor) == ('hann', 'slaney', 'slaney', 'e', audio.MEL_FLOOR)


def test_a_dataset_without_mel_statistics_is_a_clear_error():
  info = DatasetInfo(sample_rate=RATE, speakers=(), mel_mean=None, mel_std=None,
                     num_train_examples=1, num_validation_examples=0)
  with pytest.raises(ValueError, match='mel statistics'):
    LogMel.from_config(default.get_config().data, info)
