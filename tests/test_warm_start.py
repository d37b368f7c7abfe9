"""config.train.init_from: a new run from another run's parameters, and GTA-like feature files."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile

import training_runs
from experiments import default
from wavenet_jax import audio
from wavenet_jax import checkpointing
from wavenet_jax import input_pipeline
from wavenet_jax import train_metrics
from wavenet_jax import trainer
from wavenet_jax.dataset_info import DatasetInfo

RATE = 16000
# A mel- and speaker-conditioned source run without EMA (its checkpoint holds the trained
# parameters themselves).
CONDITIONED = {'model.global_conditioning': True, 'model.local_conditioning': True,
               'train.ema_decay': 0.0}


def _folder(root, speakers, base):
  for number, speaker in enumerate(speakers):
    (root / speaker).mkdir(parents=True)
    for clip in range(2):
      t = np.arange(RATE // 4) / RATE
      tone = (0.5 * np.sin(2 * np.pi * (base + 50 * number + 10 * clip) * t)).astype(np.float32)
      soundfile.write(root / speaker / f'{clip}.wav', tone, RATE, subtype='PCM_16')
  return root


def _config(wav_dir, data_dir, steps, **overrides):
  return training_runs.tiny_config({
      'data.wav_dir': str(wav_dir), 'data.data_dir': str(data_dir), 'data.sample_rate': RATE,
      'data.validation_fraction': 0.0, 'train.num_steps': steps, **CONDITIONED, **overrides})


@pytest.fixture(scope='module')
def source(tmp_path_factory):
  """(workdir, tmp root) of a 2-step run on speakers ann and bob."""
  root = tmp_path_factory.mktemp('warm_start')
  wav_dir = _folder(root / 'source_wavs', ('ann', 'bob'), 200)
  workdir = str(root / 'source')
  trainer.train_and_evaluate(_config(wav_dir, root / 'data', 2), workdir)
  return workdir, root


def _losses(monkeypatch):
  """The train losses each step records, as a list that fills as the run goes."""
  losses = []
  record = train_metrics.TrainMetrics.record

  def recording(self, step, device_metrics, last=False):
    losses.append((step, float(device_metrics['loss'])))
    record(self, step, device_metrics, last)

  monkeypatch.setattr(train_metrics.TrainMetrics, 'record', recording)
  return losses


def _first_batch_loss(trained, config):
  """The mean nats of trained's model on global batch 0 of config's run (its data, seed)."""
  model = trained.model
  batch = next(input_pipeline.prepare_dataset(config.data).train_batches(
      receptive_field=model.receptive_field, global_batch_size=config.train.batch_size,
      seed=config.seed, with_speaker=True, with_mel=True, codec=model.codec))
  logits = model.apply(trained.variables, *trainer.model_inputs(batch))
  sums, count = trainer.cross_entropy_sums(model, logits, jax.tree.map(jnp.asarray, batch))
  return float(sums.nats / count)


def test_a_workdir_without_checkpoints_is_one_line_naming_the_key(tmp_path):
  for spec in (str(tmp_path / 'none'), f'{tmp_path / "none"}@4'):
    with pytest.raises(ValueError, match=r'^config\.train\.init_from=.*no checkpoint') as error:
      checkpointing.init_source(spec)
    assert '\n' not in str(error.value)


def test_a_run_failing_after_opening_its_checkpoints_closes_them_before_removing_its_workdir(
    tmp_path, monkeypatch):
  # orbax cleans up in the background when a manager opens; a workdir removed under that
  # cleanup printed its traceback (a flaky CI failure).
  closed_with_workdir = []
  close_quietly = checkpointing.close_quietly

  def closing(manager):
    closed_with_workdir.append(os.path.isdir(workdir))
    close_quietly(manager)

  monkeypatch.setattr(checkpointing, 'close_quietly', closing)
  workdir = str(tmp_path / 'run')
  config = _config(_folder(tmp_path / 'wavs', ('ann',), 200), tmp_path / 'data', 2,
                   **{'train.init_from': str(tmp_path / 'none')})
  with pytest.raises(ValueError, match='no checkpoint'):
    trainer.train_and_evaluate(config, workdir)
  assert closed_with_workdir == [True] and not os.path.exists(workdir)


@pytest.mark.slow
def test_starts_from_the_sources_parameters_at_its_loss_and_resumes_as_any_run(
    source, monkeypatch, caplog):
  source_dir, root = source
  warm = {'train.init_from': f'{source_dir}@2', 'train.ema_decay': 0.5}
  config = _config(root / 'source_wavs', root / 'data', 2, **warm)
  workdir = str(root / 'same_data')
  losses = _losses(monkeypatch)
  trainer.train_and_evaluate(config, workdir)
  # Step 1's loss is that of the source's parameters on the new run's first batch.
  assert losses[0][0] == 1
  np.testing.assert_allclose(
      losses[0][1], _first_batch_loss(checkpointing.restore_for_inference(source_dir), config),
      rtol=1e-5)
  # The new run resumes from its own checkpoint; init_from is then ignored, with a notice.
  with caplog.at_level('WARNING'):
    trainer.train_and_evaluate(_config(root / 'source_wavs', root / 'data', 4, **warm), workdir)
  assert f'ignored: {workdir} holds checkpoints; resuming' in caplog.text
  assert [step for step, _ in losses] == [1, 2, 3, 4]
  assert checkpointing.restore_for_inference(workdir).step == 4


@pytest.mark.slow
def test_new_data_keeps_the_sources_statistics_and_rows_and_grows_the_speaker_table(source):
  source_dir, root = source
  wav_dir = _folder(root / 'new_wavs', ('bob', 'cat'), 500)
  # A zero learning rate: the run's parameters stay where the warm start put them.
  config = _config(wav_dir, root / 'data', 1,
                   **{'train.init_from': source_dir, 'train.learning_rate': 0.0})
  workdir = str(root / 'new_data')
  trainer.train_and_evaluate(config, workdir)
  before, after = (checkpointing.restore_for_inference(d) for d in (source_dir, workdir))
  assert after.dataset_info.speakers == ('ann', 'bob', 'cat')
  np.testing.assert_array_equal(after.dataset_info.mel_mean, before.dataset_info.mel_mean)
  np.testing.assert_array_equal(after.dataset_info.mel_std, before.dataset_info.mel_std)
  own = input_pipeline.prepare_dataset(config.data).info
  assert not np.allclose(own.mel_mean, before.dataset_info.mel_mean)
  grown = training_runs.checkpoint_params(workdir)
  trained = training_runs.checkpoint_params(source_dir)
  table = grown.pop('speaker_embedding/embedding')
  assert table.shape[0] == 3
  np.testing.assert_array_equal(table[:2], trained.pop('speaker_embedding/embedding'))
  training_runs.assert_params_close(grown, trained, rtol=0, atol=0)


@pytest.mark.slow
def test_another_architecture_is_one_line_naming_the_parameter_before_any_work(
    source, monkeypatch):
  source_dir, root = source
  monkeypatch.setattr(input_pipeline, 'prepare_dataset', None)  # Not reached.
  config = _config(root / 'source_wavs', root / 'data', 1,
                   **{'train.init_from': source_dir, 'model.residual_channels': 4})
  with pytest.raises(ValueError, match=r"^config\.train\.init_from=.*params\[.*\] of shape") \
      as error:
    trainer.train_and_evaluate(config, str(root / 'other_model'))
  assert '\n' not in str(error.value)


def test_frames_a_frame_off_are_fitted_and_said_five_off_skipped_by_name(tmp_path):
  """A GTA-like folder: an acoustic model's frames one too many for one file, five for another."""
  hop = 80
  wavs = tmp_path / 'wavs'
  wavs.mkdir()
  for name, extra in (('exact', 0), ('one_long', 1), ('one_short', -1), ('five_long', 5)):
    audio.write_wav(wavs / f'{name}.wav', np.zeros(8 * hop), 8000)
    np.save(wavs / f'{name}.npy', np.ones((8 + extra, 4), np.float32))
  config = default.get_config().data
  config.update(wav_dir=str(wavs), data_dir=str(tmp_path / 'tfds'), sample_rate=8000,
                validation_fraction=0.0, read_threads=1)
  config.mel.update(n_mels=16, hop_length=hop, n_fft=256, fmax=4000)
  config.features.update(source='files', hop_length=hop, channels=4)
  dataset = input_pipeline.prepare_dataset(config)
  metadata = dataset.source.builder.info.metadata
  assert sorted(metadata['skipped']) == ['five_long.wav']
  assert 'holds 13 frames' in metadata['skipped']['five_long.wav']
  assert metadata['fitted'] == {'one_long.wav': '9 frames for 8: the last 1 dropped',
                                'one_short.wav': '7 frames for 8: the last repeated 1 time(s)'}
  described = '\n'.join(dataset.source.describe())
  assert 'one_long.wav (9 frames for 8' in described and 'five_long.wav' in described
  assert dataset.info.num_train_examples == 3


@pytest.mark.slow
def test_gta_frames_from_files_start_from_a_mel_vocoder_in_its_convention(source, monkeypatch):
  """The recipe of docs/tts.md: the acoustic model's frames, in the vocoder's log-mel convention,
  as <stem>.npy beside the audio (here the true ones, one file's a frame long)."""
  source_dir, root = source
  vocoder = checkpointing.restore_for_inference(source_dir)
  wav_dir = root / 'gta_wavs'
  for path in sorted((root / 'source_wavs').glob('*/*.wav')):
    (wav_dir / path.parent.name).mkdir(parents=True, exist_ok=True)
    waveform, _ = soundfile.read(path, dtype='float32')
    soundfile.write(wav_dir / path.parent.name / path.name, waveform, RATE, subtype='PCM_16')
    frames = audio.log_mel(waveform, RATE, vocoder.features)
    if path.stem == '0':
      frames = np.concatenate([frames, frames[-1:]])
    np.save(wav_dir / path.parent.name / f'{path.stem}.npy', frames)
  config = _config(wav_dir, root / 'data', 1, **{
      'train.init_from': source_dir, 'data.features.source': 'files',
      'data.features.channels': vocoder.features.n_mels,
      'data.features.hop_length': vocoder.features.hop_length})
  workdir = str(root / 'gta')
  losses = _losses(monkeypatch)
  trainer.train_and_evaluate(config, workdir)
  gta = checkpointing.restore_for_inference(workdir)
  np.testing.assert_array_equal(gta.dataset_info.features_mean, vocoder.dataset_info.mel_mean)
  np.testing.assert_array_equal(gta.dataset_info.features_std, vocoder.dataset_info.mel_std)
  # The same normalised frames as the vocoder's own: its loss on the same crops.
  np.testing.assert_allclose(
      losses[0][1], _first_batch_loss(vocoder, _config(root / 'source_wavs', root / 'data', 1)),
      rtol=1e-4)


def test_a_resumed_run_keeps_the_statistics_of_its_checkpoint():
  def info(mean):
    return DatasetInfo(sample_rate=RATE, speakers=('a',), mel_mean=np.full(2, mean, np.float32),
                       mel_std=np.ones(2, np.float32), num_train_examples=1,
                       num_validation_examples=0)

  resumed, _ = info(5.0).resumed_from(info(1.0), speaker_conditioned=False,
                                      grow_speakers=False, setting='x')
  np.testing.assert_array_equal(resumed.mel_mean, [1.0, 1.0])
  assert resumed.features_mean is None
