"""Tests of the restored-model record (checkpointing.TrainedModel) and of the config keys that
moved: what a caller of the library gets from a checkpoint.

The README's library snippet (`generate`, then the record or the model's codec decodes) must
give the audio that sample.py (`synthesis.synthesize`) writes, pre-emphasis included.
"""
import json

import jax
import numpy as np
import pytest

from experiments import default
import wavenet_jax
from wavenet_jax import checkpointing
from wavenet_jax import codecs
from wavenet_jax import config_rules
from wavenet_jax import synthesis
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.models import model_from_config

RATE = 8000
HOP = 4
N_MELS = 3
SPEAKERS = ('ann', 'ben', 'cy')
CHANNELS = 5  # Of the features from files (config.data.features.source='files').


def _record(**overrides) -> checkpointing.TrainedModel:
  """A TrainedModel of a tiny, freshly initialised model of default.py with `overrides`."""
  config = default.get_config()
  config.update_from_flattened_dict({
      'model.num_layers': 2, 'model.num_stacks': 1, 'model.residual_channels': 4,
      'model.gate_channels': 4, 'model.skip_channels': 4, 'model.num_mixtures': 2,
      'model.upsample_scales': (2, 2), 'data.sample_rate': RATE, 'data.mel.n_mels': N_MELS,
      'data.mel.hop_length': HOP, 'data.mel.n_fft': 16, 'data.mel.fmax': RATE / 2,
      **overrides})
  info = DatasetInfo(sample_rate=RATE, speakers=SPEAKERS, num_train_examples=1,
                     num_validation_examples=0,
                     mel_mean=np.full(N_MELS, -5.0, np.float32),
                     mel_std=np.full(N_MELS, 2.0, np.float32),
                     features_mean=np.full(CHANNELS, 1.0, np.float32),
                     features_std=np.full(CHANNELS, 0.5, np.float32))
  model = model_from_config(config.model, config.data, info.speakers)
  local_cond = (np.zeros((1, 1, model.local_cond_channels), np.float32)
                if model.local_cond_channels else None)
  global_cond = np.zeros(1, np.int32) if model.num_speakers else None
  variables = model.init(jax.random.key(0), np.zeros((1, HOP), np.int32), global_cond,
                         local_cond)
  return checkpointing.TrainedModel(config=config, dataset_info=info, model=model,
                                    variables=variables, step=0)


def _speech(num_samples: int) -> np.ndarray:
  time = np.arange(num_samples) / RATE
  return (0.5 * np.sin(2 * np.pi * 440 * time) * np.exp(-3 * time)).astype(np.float32)


@pytest.mark.slow  # Two compilations of each model (generate, synthesize).
@pytest.mark.parametrize('overrides', [
    {},  # The paper's μ-law softmax, unconditioned.
    {'model.output': 'mixture_of_logistics', 'model.preemphasis': 0.9,
     'model.local_conditioning': True},  # A 16-bit vocoder trained with pre-emphasis.
])
def test_the_readme_snippet_decodes_what_sample_py_writes(overrides):
  trained = _record(**overrides)
  speech = _speech(60)
  inputs = trained.conditioning(mel_from=speech if trained.features else None)
  rng = jax.random.key(3)
  samples = wavenet_jax.generate(trained.model, trained.variables, rng,
                                 num_samples=len(speech) - 1, **inputs)
  resynthesis = trained.decode(samples)
  written = synthesis.synthesize(trained.model, trained.variables, rng,
                                 num_samples=len(speech) - 1, **inputs)
  assert resynthesis.shape == (1, len(speech) - 1)
  # synthesize leads with the silent start sample; at 16 bits it decodes to 0, the state the
  # snippet's decoding starts from.
  np.testing.assert_allclose(resynthesis, written[:, 1:], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(trained.model.codec.decode(samples), resynthesis, atol=1e-6)
  values = trained.model.codec.values(np.asarray(samples))
  if trained.model.preemphasis:
    np.testing.assert_allclose(resynthesis, codecs.deemphasize(values, 0.9), atol=1e-6)
    assert np.abs(resynthesis - values).max() > 1e-3  # Undecoded values are other audio.
  else:
    np.testing.assert_array_equal(resynthesis, values)


def test_encode_is_the_model_codec_with_its_preemphasis():
  trained = _record(**{'model.output': 'mixture_of_logistics', 'model.preemphasis': 0.5})
  speech = _speech(100)
  np.testing.assert_array_equal(trained.encode(speech),
                                codecs.pcm_encode(codecs.preemphasize(speech, 0.5)))
  prompt = trained.conditioning(2, prompt=speech)['prompt']
  np.testing.assert_array_equal(prompt, np.stack([trained.encode(speech)] * 2))
  np.testing.assert_allclose(trained.decode(trained.encode(speech)), speech, atol=1e-4)


def test_features_are_the_checkpoints_and_only_for_a_locally_conditioned_model():
  assert _record().features is None
  trained = _record(**{'model.local_conditioning': True})
  features = trained.features
  assert (features.sample_rate, features.hop_length, features.n_mels) == (RATE, HOP, N_MELS)
  np.testing.assert_array_equal(features.mean, trained.dataset_info.mel_mean)
  local_cond = trained.conditioning(3, mel_from=_speech(41))['local_cond']
  assert local_cond.shape == (3, features.num_frames(41), N_MELS)
  np.testing.assert_array_equal(local_cond[2], features(_speech(41)))


def test_features_from_files_condition_the_model_normalised_with_their_statistics():
  trained = _record(**{'model.local_conditioning': True, 'data.features.source': 'files',
                       'data.features.channels': CHANNELS, 'data.features.hop_length': HOP})
  assert trained.model.local_cond_channels == CHANNELS and trained.features.hop_length == HOP
  frames = np.arange(4 * CHANNELS, dtype=np.float32).reshape(4, CHANNELS)
  local_cond = trained.conditioning(2, features=frames)['local_cond']
  np.testing.assert_array_equal(local_cond, np.stack([(frames - 1.0) / 0.5] * 2))
  for bad, message in ((frames[:, :3], r'^features: features of shape \(4, 3\), but this '
                        r'model reads \[frames, 5\] arrays'),
                       (frames[:0], '^features: the features array holds no frames'),
                       (frames * np.nan, '^features: the features hold NaN')):
    with pytest.raises(ValueError, match=message):
      trained.conditioning(features=bad)
  with pytest.raises(ValueError, match='^features is needed: this model is conditioned on '
                                       r'features from files \(\[frames, 5\] arrays\)'):
    trained.conditioning(mel_from=_speech(40))


def test_a_vocoder_takes_log_mel_frames_of_its_convention():
  trained = _record(**{'model.local_conditioning': True})
  log_mel = np.log(np.full((6, N_MELS), 0.5, np.float32))
  np.testing.assert_array_equal(trained.conditioning(features=log_mel)['local_cond'][0],
                                (log_mel + 5.0) / 2.0)


def test_speaker_by_name_or_id():
  trained = _record(**{'model.global_conditioning': True})
  assert trained.speaker_id('ben') == 1 and trained.speaker_id('2') == 2
  for unknown in ('dan', '3'):
    with pytest.raises(ValueError, match=f"^speaker='{unknown}' is unknown; known speakers "
                                         r'\(id: name\): 0: ann, 1: ben, 2: cy$'):
      trained.speaker_id(unknown)
  np.testing.assert_array_equal(trained.conditioning(2, speaker='cy')['global_cond'], [2, 2])


@pytest.mark.parametrize('overrides, arguments, message', [
    ({'model.global_conditioning': True}, {}, '^speaker is needed: this model is '
     'speaker-conditioned; known speakers: ann, ben, cy$'),
    ({}, {'speaker': 'ann'}, '^speaker given, but this model is not speaker-conditioned'),
    ({'model.local_conditioning': True}, {}, '^mel_from is needed: this model is a vocoder'),
    ({}, {'mel_from': np.zeros(8, np.float32)}, '^mel_from given, but this model has no local'),
])
def test_conditioning_that_does_not_fit_the_model_names_the_argument(overrides, arguments,
                                                                     message):
  with pytest.raises(ValueError, match=message):
    _record(**overrides).conditioning(**arguments)


def test_a_config_setting_the_old_preemphasis_key_moves_it_with_a_notice():
  config = default.get_config()
  config.lock()
  config.data.preemphasis = 0.97  # As --config.data.preemphasis=0.97 sets it.
  assert config_rules.move_config_keys(config) == [
      'config.data.preemphasis moved to config.model.preemphasis; using its value 0.97 there.']
  assert config.model.preemphasis == 0.97 and 'preemphasis' not in config.data
  assert config_rules.move_config_keys(config) == []  # Nothing left to move.
  unset = default.get_config()
  assert config_rules.move_config_keys(unset) == []
  assert unset.model.preemphasis == 0.0 and 'preemphasis' not in unset.data
  both = default.get_config()
  both.data.preemphasis, both.model.preemphasis = 0.97, 0.5
  with pytest.raises(ValueError, match=r'config.data.preemphasis \(moved to '
                                       r'config.model.preemphasis\) is 0.97, but'):
    config_rules.move_config_keys(both)


@pytest.mark.parametrize('saved_data, preemphasis', [
    ({'preemphasis': 0.97}, 0.97),  # Saved when the key was config.data.preemphasis.
    ({}, 0.0),  # Saved before pre-emphasis existed.
])
def test_an_old_checkpoints_config_restores_with_the_key_moved(saved_data, preemphasis):
  old = json.loads(default.get_config().to_json_best_effort())
  del old['model']['preemphasis'], old['data']['preemphasis']
  old['data'].update(saved_data)
  restored = config_rules.config_from_saved_json(old)
  assert restored.model.preemphasis == preemphasis and 'preemphasis' not in restored.data
  assert model_from_config(restored.model, restored.data, ()).codec.preemphasis == preemphasis
