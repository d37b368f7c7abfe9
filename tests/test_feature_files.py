"""Local conditioning on features read from files: stored with the audio, read back aligned."""
import json

import numpy as np
import pytest
import soundfile

from experiments import default
from wavenet_jax import audio
from wavenet_jax import codecs
from wavenet_jax import config_rules
from wavenet_jax import features
from wavenet_jax import input_pipeline
from wavenet_jax.dataset_info import DatasetInfo
# Pieces of 1 s, margins of 0.25 s (autouse): the ramp below is a long recording.
from test_long_recordings import short_pieces  # pylint: disable=unused-import

RATE = 8000
# 96 does not divide the pieces' 8000-sample stride or their 2000-sample margin: pieces start
# inside a frame (features_lag > 0).
HOP = 96
LONG_SAMPLES = 30_000
RAMP = (np.arange(LONG_SAMPLES) - LONG_SAMPLES // 2).astype(np.int16)
PCM = codecs.Codec('pcm', codecs.PCM16_CLASSES)
# Short clip i: 800 + 50 i samples, its file's frames these many more than it needs.
SHORT_EXTRA_FRAMES = (0, -1, 1)


def _frames(num_samples: int, offset: float = 0.0) -> np.ndarray:
  """float32 [ceil(n / HOP), 3]: channel 0 the frame's index, 1 its first sample, 2 a constant."""
  index = np.arange(-(-num_samples // HOP), dtype=np.float32)
  return np.stack([index + offset, index * HOP, np.full_like(index, 7.0)], axis=1)


def _data_config(root, **features_settings):
  config = default.get_config().data
  config.update(wav_dir=str(root / 'wavs'), data_dir=str(root / 'tfds'), sample_rate=RATE,
                segment_length=400, validation_fraction=0.0, read_threads=1)
  config.mel.update(n_mels=16, hop_length=64, n_fft=256, fmax=RATE / 2)
  config.features.update(source='files', hop_length=HOP, channels=3, **features_settings)
  return config


@pytest.fixture(scope='module')
def feature_folder(tmp_path_factory):
  """(config.data, PreparedDataset): a long ramp recording and short clips, frames beside them
  (one clip's frames a frame short, another's a frame long: within the tolerance)."""
  root = tmp_path_factory.mktemp('features')
  (root / 'wavs' / 'spk').mkdir(parents=True)
  soundfile.write(root / 'wavs' / 'spk' / 'long.wav', RAMP, RATE, subtype='PCM_16')
  np.save(root / 'wavs' / 'spk' / 'long.npy', _frames(LONG_SAMPLES))
  for i, extra in enumerate(SHORT_EXTRA_FRAMES):
    audio.write_wav(root / 'wavs' / 'spk' / f'short{i}.wav', np.full(800 + 50 * i, 0.01 * i), RATE)
    np.save(root / 'wavs' / 'spk' / f'short{i}.npy', _frames(800 + 50 * i + HOP * extra, 1000 * (i + 1)))
  config = _data_config(root)
  return config, input_pipeline.prepare_dataset(config)


def _stored_values(crop_frames: np.ndarray, info: DatasetInfo) -> np.ndarray:
  """The files' values of normalised crop frames."""
  return crop_frames * info.features_std + info.features_mean


def test_crop_frames_are_the_files_frames_at_the_crops_position(feature_folder):
  config, dataset = feature_folder
  assert dataset.source.builder.info.metadata['pieced'] == ['spk/long.wav']
  examples = dataset.source.data_source('train')
  assert sorted(int(examples[i]['features_lag']) for i in range(len(examples))) == [
      0, 0, 0, 0, 6000 % HOP, 14000 % HOP]  # Pieces start at 0, 6000, 14000.
  batches = dataset.train_batches(receptive_field=16, global_batch_size=6, seed=1, codec=PCM,
                                  with_mel=True)
  length = 16 + config.segment_length
  seen_long = 0
  for batch in (next(batches) for _ in range(8)):
    assert batch['mel'].shape == (6, -(-length // HOP), 3)
    for audio_row, mask, frames in zip(batch['audio'], batch['mask'], batch['mel']):
      values = _stored_values(frames, dataset.info)
      if values[0, 0] >= 1000:  # A short clip: channel 0 counts from 1000 (i + 1).
        # A crop inside the clip: consecutive frames of it, a frame short file's last repeated.
        i = int(values[0, 0] // 1000) - 1
        last = -(-(800 + 50 * i) // HOP) - 1 + min(0, SHORT_EXTRA_FRAMES[i])
        expected = np.minimum(values[0, 1] / HOP + np.arange(len(values)), last)
        np.testing.assert_allclose(values[:, 0] % 1000, expected, atol=1e-3)
        continue
      # The ramp: its first sample says where the crop starts in the recording.
      start = int(audio_row[0]) - 32768 + LONG_SAMPLES // 2
      assert start % HOP == 0, start
      np.testing.assert_allclose(values[:, 1], start + HOP * np.arange(len(values)), atol=0.05)
      np.testing.assert_allclose(values[:, 0], start // HOP + np.arange(len(values)), atol=1e-3)
      assert mask.all()
      seen_long += 1
  assert seen_long > 5


def test_pre_emphasis_filters_the_audio_and_leaves_the_frames(feature_folder):
  _, dataset = feature_folder
  kwargs = dict(receptive_field=16, global_batch_size=6, seed=4, with_mel=True)
  plain = next(dataset.train_batches(codec=PCM, **kwargs))
  emphasised = next(dataset.train_batches(
      codec=codecs.Codec('pcm', codecs.PCM16_CLASSES, 0.9), **kwargs))
  np.testing.assert_array_equal(emphasised['mel'], plain['mel'])
  assert not np.array_equal(emphasised['audio'], plain['audio'])


def test_every_host_reads_its_rows_of_the_same_global_batches(feature_folder):
  _, dataset = feature_folder
  kwargs = dict(receptive_field=16, global_batch_size=4, seed=2, codec=PCM, with_mel=True)
  whole = next(dataset.train_batches(**kwargs))
  halves = [next(dataset.train_batches(process_index=h, process_count=2, **kwargs))
            for h in range(2)]
  for key in ('audio', 'mel'):
    np.testing.assert_array_equal(np.concatenate([half[key] for half in halves]), whole[key])


def test_statistics_are_the_files_and_round_trip_through_the_dataset_info(feature_folder):
  _, dataset = feature_folder
  info = dataset.info
  assert info.features_mean.shape == (3,) and info.features_std[2] == 1.0  # Constant channel.
  restored = DatasetInfo.from_json(info.to_json())
  np.testing.assert_array_equal(restored.features_mean, info.features_mean)
  np.testing.assert_array_equal(restored.features_std, info.features_std)
  feature_config = features.from_config(dataset.config, restored)
  assert isinstance(feature_config, features.FileFeatures) and feature_config.hop_length == HOP
  old = json.loads(info.to_json())
  del old['features_mean'], old['features_std']  # A checkpoint from before file features.
  assert DatasetInfo.from_json(json.dumps(old)).features_mean is None


def test_min_max_normalisation_maps_the_training_frames_into_0_1(feature_folder):
  """config.data.features.normalisation='min_max': offset = the training frames' minimum,
  scale = max - min (1 for the constant channel), so the crops' frames lie in [0, 1]; stored
  beside the 'standard' statistics, not over them."""
  config, standard = feature_folder
  min_max_config = config.copy_and_resolve_references()
  min_max_config.features.normalisation = 'min_max'
  dataset = input_pipeline.prepare_dataset(min_max_config)
  examples = dataset.source.data_source('train')
  frames = np.concatenate([np.asarray(examples[i]['features']) for i in range(len(examples))])
  np.testing.assert_allclose(dataset.info.features_mean, frames.min(axis=0))
  np.testing.assert_allclose(dataset.info.features_std[:2], np.ptp(frames, axis=0)[:2])
  assert dataset.info.features_std[2] == 1.0
  batch = next(dataset.train_batches(receptive_field=16, global_batch_size=6, seed=1,
                                     codec=PCM, with_mel=True))
  assert batch['mel'].min() >= 0.0 and batch['mel'].max() <= 1.0 and batch['mel'].max() > 0.5
  again = input_pipeline.prepare_dataset(config).info
  np.testing.assert_array_equal(again.features_mean, standard.info.features_mean)
  np.testing.assert_array_equal(again.features_std, standard.info.features_std)

def test_bad_feature_files_are_reported_and_skipped(tmp_path):
  wavs = tmp_path / 'wavs'
  wavs.mkdir()
  for name, frames in (('good', _frames(1000)), ('short', _frames(1000 - 3 * HOP)),
                       ('long', _frames(1000 + 3 * HOP)), ('nan', _frames(1000) * np.nan),
                       ('missing', None)):
    audio.write_wav(wavs / f'{name}.wav', np.zeros(1000), RATE)
    if frames is not None:
      np.save(wavs / f'{name}.npy', frames)
  dataset = input_pipeline.prepare_dataset(_data_config(tmp_path))
  skipped = dataset.source.builder.info.metadata['skipped']
  assert sorted(skipped) == ['long.wav', 'missing.wav', 'nan.wav', 'short.wav']
  assert 'holds 8 frames' in skipped['short.wav'] and 'need 11' in skipped['short.wav']
  assert 'NaN' in skipped['nan.wav'] and 'no features file' in skipped['missing.wav']
  assert dataset.info.num_train_examples == 1


def test_a_wrong_channel_count_is_one_error_naming_the_file(tmp_path):
  (tmp_path / 'wavs').mkdir()
  audio.write_wav(tmp_path / 'wavs' / 'a.wav', np.zeros(1000), RATE)
  np.save(tmp_path / 'wavs' / 'a.npy', np.zeros((11, 5), np.float32))
  with pytest.raises(ValueError, match=r'a\.npy: features of shape \(11, 5\), but '
                                       r'config\.data\.features\.channels=3'):
    input_pipeline.prepare_dataset(_data_config(tmp_path))


def test_features_in_a_mirror_folder(tmp_path):
  (tmp_path / 'wavs' / 'spk').mkdir(parents=True)
  (tmp_path / 'mirror' / 'spk').mkdir(parents=True)
  audio.write_wav(tmp_path / 'wavs' / 'spk' / 'a.wav', np.zeros(1000), RATE)
  np.save(tmp_path / 'mirror' / 'spk' / 'a.npy', _frames(1000))
  dataset = input_pipeline.prepare_dataset(
      _data_config(tmp_path, dir=str(tmp_path / 'mirror')))
  example = dataset.source.data_source('train')[0]
  np.testing.assert_array_equal(example['features'], _frames(1000))
  assert int(example['features_lag']) == 0


def test_normalise_refuses_bad_arrays_in_one_line():
  file_features = features.FileFeatures(hop_length=HOP, mean=np.zeros(3, np.float32),
                                        std=np.ones(3, np.float32))
  for frames, message in ((np.zeros((4, 2)), r'shape \(4, 2\).*3 channels'),
                          (np.zeros((0, 3)), 'no frames'),
                          (np.full((4, 3), np.nan), 'NaN')):
    with pytest.raises(ValueError, match='x.npy: .*' + message):
      file_features.normalise(frames, 'x.npy')


def test_a_config_saved_before_features_existed_restores_as_the_mel_and_resumes():
  current = default.get_config()
  saved = json.loads(current.to_json_best_effort())
  del saved['data']['features']  # As checkpoints written before config.data.features.
  restored = config_rules.config_from_saved_json(saved)
  assert features.source(restored.data) == features.MEL
  changes = config_rules.check_resumable(restored, current, 'runs/old')
  assert not [change for change in changes if 'features' in change], changes
  changed = default.get_config()
  changed.data.features.source = 'labels'
  with pytest.raises(ValueError, match="config.data.features.source: 'mel' -> 'labels'"):
    config_rules.check_resumable(restored, changed, 'runs/old')
  # Written with features, before their normalisation and projection keys: as they were then.
  saved = json.loads(current.to_json_best_effort())
  del saved['data']['features']['normalisation'], saved['model']['local_cond_projection']
  changes = config_rules.check_resumable(config_rules.config_from_saved_json(saved), current,
                                         'runs/old')
  assert not [change for change in changes if 'normalisation' in change or 'projection' in change]


@pytest.mark.parametrize('key, value, message', [
    ('data.top_db', 30.0, "config.data.top_db must be 0 with config.data.features.source='files'"),
    ('data.features.channels', 0, 'config.data.features.channels must be >= 1, got 0'),
    ('data.features.source', 'mfcc', "config.data.features.source='mfcc' must be one of"),
    ('data.features.normalisation', 'zscore',
     "config.data.features.normalisation must be one of \\['standard', 'min_max', "),
    ('model.local_cond_projection', -1, 'config.model.local_cond_projection must be >= 0'),
])
def test_check_config_names_the_features_key(key, value, message):
  config = default.get_config()
  config.data.features.update(source='files', channels=3)
  config.update_from_flattened_dict({key: value})
  with pytest.raises(ValueError, match=message):
    config_rules.check_config(config, num_batch_shards=1)
