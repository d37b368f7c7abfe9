"""Resuming on a dataset that changed: re-prepared files, speakers matched by name, grown."""
import shutil

import flax.linen as nn
import jax
import numpy as np
import pytest
import soundfile

import training_runs
from wavenet_jax import checkpointing
from wavenet_jax import input_pipeline
from wavenet_jax import optimizers
from wavenet_jax import trainer
from wavenet_jax.dataset_info import DatasetInfo

RATE = 16000


def _info(speakers, prepared_as='audio_folder/a_16000hz_0/2.0.0'):
  return DatasetInfo(sample_rate=RATE, speakers=tuple(speakers), mel_mean=None, mel_std=None,
                     num_train_examples=1, num_validation_examples=0, prepared_as=prepared_as)


def _resumed(current, saved, grow=False, conditioned=True):
  return _info(current).resumed_from(_info(saved), speaker_conditioned=conditioned,
                                     grow_speakers=grow, setting="config.data.wav_dir='/d'")


@pytest.mark.parametrize('current, saved', [
    (('awb', 'slt'), ('awb', 'slt')),
    (('ann', 'slt'), ('slt', 'ann')),  # Sorted names put a new name first: rows follow names.
])
def test_known_speakers_keep_their_rows(current, saved):
  info, notices = _resumed(current, saved)
  assert info.speakers == saved and notices == []


@pytest.mark.parametrize('current, saved', [
    (('slt', 'zed'), ('awb', 'slt')),  # awb/ renamed to zed/: same count, other name.
    (('bdl', 'slt'), ('awb', 'slt')),  # One speaker swapped for another.
])
def test_a_new_speaker_is_a_one_line_error_naming_the_folder_and_the_key(current, saved):
  with pytest.raises(ValueError) as error:
    _resumed(current, saved)
  message = str(error.value)
  assert '\n' not in message and "config.data.wav_dir='/d'" in message
  assert f'speaker(s) {current[0] if current[0] not in saved else current[1]} ' in message
  assert 'config.train.grow_speakers=True' in message and 'this config' not in message


def test_a_missing_speaker_keeps_its_row_with_a_notice():
  info, notices = _resumed(('slt',), ('awb', 'slt'))
  assert info.speakers == ('awb', 'slt')
  (notice,) = notices
  assert notice.startswith('Speaker(s) awb of the checkpoint have no audio in')


def test_grow_appends_new_speakers_after_the_checkpoints():
  info, notices = _resumed(('bdl', 'slt', 'zed'), ('awb', 'slt'), grow=True)
  assert info.speakers == ('awb', 'slt', 'bdl', 'zed')
  assert len(notices) == 2 and 'bdl, zed (ids 2-3)' in notices[1]


def test_unconditioned_models_take_any_speakers_and_a_changed_dataset_is_one_line():
  info = _info(('zed',), prepared_as='audio_folder/a_16000hz_1/2.0.0')
  resumed, notices = info.resumed_from(_info(('awb',)), speaker_conditioned=False,
                                       grow_speakers=False, setting='config.data.name=x')
  assert resumed == info
  (notice,) = notices
  assert '\n' not in notice and 'changed since the checkpoint' in notice
  # Checkpoints written before prepared_as was saved: nothing to compare.
  assert _info(('a',)).resumed_from(_info(('a',), prepared_as=None), speaker_conditioned=True,
                                    grow_speakers=False, setting='x') == (_info(('a',)), [])


def _tone(frequency, seconds=0.25):
  t = np.arange(int(seconds * RATE)) / RATE
  return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _folder(root, speakers):
  for number, speaker in enumerate(speakers):
    (root / speaker).mkdir(parents=True)
    for clip in range(2):
      soundfile.write(root / speaker / f'{clip}.wav', _tone(200 + 50 * number + 10 * clip),
                      RATE, subtype='PCM_16')
  return root


def _config(wav_dir, data_dir, steps, **overrides):
  return training_runs.tiny_config({
      'data.wav_dir': str(wav_dir), 'data.data_dir': str(data_dir), 'data.sample_rate': RATE,
      'data.validation_fraction': 0.0, 'train.num_steps': steps, **overrides})


def test_crops_carry_the_checkpoints_row_of_their_speaker(tmp_path):
  wav_dir = _folder(tmp_path / 'wavs', ('ann', 'bob'))
  config = _config(wav_dir, tmp_path / 'data', 2)
  dataset = input_pipeline.prepare_dataset(config.data)
  resumed, _ = dataset.resumed_from(_info(('bob', 'ann')), speaker_conditioned=True,
                                    grow_speakers=False)
  crops = dict(receptive_field=16, global_batch_size=2, seed=0, with_speaker=True)
  batches = [next(data.train_batches(**crops)) for data in (dataset, resumed)]
  # ann is row 0 of the dataset, row 1 of the checkpoint (and bob the other way round).
  np.testing.assert_array_equal(batches[1]['speaker'], 1 - batches[0]['speaker'])
  np.testing.assert_array_equal(batches[1]['audio'], batches[0]['audio'])


@pytest.mark.slow
def test_a_file_rewritten_with_the_same_length_is_prepared_again_and_said(tmp_path, caplog):
  wav_dir = _folder(tmp_path / 'wavs', ('awb', 'slt'))
  workdir = str(tmp_path / 'run')
  trainer.train_and_evaluate(_config(wav_dir, tmp_path / 'data', 2), workdir)
  before = checkpointing.restore_for_inference(workdir).dataset_info.prepared_as
  soundfile.write(wav_dir / 'awb' / '0.wav', 0.5 * _tone(300), RATE, subtype='PCM_16')
  with caplog.at_level('WARNING'):
    trainer.train_and_evaluate(_config(wav_dir, tmp_path / 'data', 4), workdir)
  after = checkpointing.restore_for_inference(workdir).dataset_info.prepared_as
  assert after != before
  changed = [line for line in caplog.text.splitlines() if 'changed since the checkpoint' in line]
  assert len(changed) == 1 and f'{before} -> {after}' in changed[0]


@pytest.mark.slow
def test_renamed_speakers_fail_and_grown_ones_keep_the_trained_rows(tmp_path, caplog):
  wav_dir = _folder(tmp_path / 'wavs', ('awb', 'slt'))
  workdir = str(tmp_path / 'run')
  conditioned = {'model.global_conditioning': True, 'train.ema_decay': 0.0}
  trainer.train_and_evaluate(_config(wav_dir, tmp_path / 'data', 2, **conditioned), workdir)
  trained = training_runs.checkpoint_params(workdir)
  shutil.move(wav_dir / 'awb', wav_dir / 'zed')
  with pytest.raises(ValueError, match=r'speaker\(s\) zed .*grow_speakers') as error:
    trainer.train_and_evaluate(_config(wav_dir, tmp_path / 'data', 4, **conditioned), workdir)
  assert str(wav_dir) in str(error.value)
  # A zero learning rate: the resumed steps leave every parameter where the restore put it.
  grow = {**conditioned, 'train.grow_speakers': True, 'train.learning_rate': 0.0}
  with caplog.at_level('WARNING'):
    trainer.train_and_evaluate(_config(wav_dir, tmp_path / 'data', 4, **grow), workdir)
  assert 'Speaker(s) awb of the checkpoint have no audio' in caplog.text
  trained_model = checkpointing.restore_for_inference(workdir)
  assert trained_model.dataset_info.speakers == ('awb', 'slt', 'zed')
  assert trained_model.speaker_id('slt') == 1
  grown = training_runs.checkpoint_params(workdir)
  table = grown.pop('speaker_embedding/embedding')
  np.testing.assert_array_equal(table[:2], trained.pop('speaker_embedding/embedding'))
  training_runs.assert_params_close(grown, trained, rtol=0, atol=0)
  config = _config(wav_dir, tmp_path / 'data', 4, **grow)
  fresh = nn.unbox(trainer.init_train_state(jax.random.key(config.seed), trained_model.model,
                                            optimizers.create_optimizer(config.train), False).params)
  np.testing.assert_allclose(table[2], fresh['speaker_embedding']['embedding'][2], rtol=1e-6)
