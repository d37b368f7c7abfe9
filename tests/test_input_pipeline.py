"""Tests of the input pipeline: batches, mel alignment, host slices, exact resume."""
import itertools

import numpy as np
import pytest

from experiments import default
from wavenet_jax import audio
from wavenet_jax import codecs
from wavenet_jax import dataset_info
from wavenet_jax import input_pipeline
from wavenet_jax import mulaw

RATE = 8000
RECEPTIVE_FIELD = 64
SEGMENT = 192
LENGTH = RECEPTIVE_FIELD + SEGMENT
HOP = 64
# Clip lengths in samples: two are shorter than a crop (LENGTH).
CLIP_LENGTHS = (160, 900, 1300, 700, 2000, 1100, 230, 1500, 1000, 800)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  """(data config, PreparedDataset, {file name: float32 clip}) of a small 2-speaker folder."""
  root = tmp_path_factory.mktemp('pipeline')
  rng = np.random.default_rng(0)
  clips = {}
  for i, length in enumerate(CLIP_LENGTHS):
    speaker = ('ann', 'ben')[i % 2]
    (root / 'wavs' / speaker).mkdir(parents=True, exist_ok=True)
    path = root / 'wavs' / speaker / f'clip{i}.wav'
    audio.write_wav(path, rng.uniform(-0.4, 0.4, length).astype(np.float32), RATE)
    clips[f'{speaker}/clip{i}.wav'] = audio.load_audio(path, RATE)
  config = default.get_config().data
  config.update(wav_dir=str(root / 'wavs'), data_dir=str(root / 'tfds'), sample_rate=RATE,
                segment_length=SEGMENT, validation_fraction=0.25, read_threads=2)
  config.mel.update(n_mels=16, hop_length=HOP, n_fft=256, fmax=RATE / 2)
  return config, input_pipeline.prepare_dataset(config), clips


def _train(dataset, steps, start_step=0, process_index=0, process_count=1, seed=0,
           global_batch_size=4, **kwargs):
  batches = dataset.train_batches(
      receptive_field=RECEPTIVE_FIELD, global_batch_size=global_batch_size,
      seed=seed, start_step=start_step, process_index=process_index, process_count=process_count,
      **kwargs)
  return list(itertools.islice(batches, steps))


def _identify(row_audio, row_mask, clips):
  """(file, start) of the clip crop that a batch row holds."""
  valid = int(row_mask.sum())
  matches = []
  for name, clip in clips.items():
    for start in range(0, max(len(clip) - valid, 0) + 1):
      if np.array_equal(mulaw.encode(clip[start:start + valid]), row_audio[:valid]):
        matches.append((name, start))
  assert len(matches) == 1, matches
  return matches[0]


def _assert_batches_equal(actual, expected):
  assert len(actual) == len(expected)
  for a, e in zip(actual, expected):
    assert a.keys() == e.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], e[key])


def test_dataset_info(prepared):
  config, dataset, clips = prepared
  info = dataset.info
  assert info.speakers == ('ann', 'ben')
  assert info.num_train_examples + info.num_validation_examples == len(clips)
  assert info.num_validation_examples >= 1
  assert info.mel_mean.shape == info.mel_std.shape == (config.mel.n_mels,)
  assert np.all(info.mel_std > 0)
  restored = dataset_info.DatasetInfo.from_json(info.to_json())
  assert restored.speakers == info.speakers
  np.testing.assert_array_equal(restored.mel_mean, info.mel_mean)
  assert restored.mel_mean.dtype == np.float32
  again = input_pipeline.prepare_dataset(config).info
  np.testing.assert_array_equal(again.mel_std, info.mel_std)


@pytest.mark.parametrize('with_speaker,with_mel', [(False, False), (True, True)])
def test_batch_keys_shapes_and_dtypes(prepared, with_speaker, with_mel):
  config, dataset, _ = prepared
  batch, = _train(dataset, 1, with_speaker=with_speaker, with_mel=with_mel)
  expected_keys = {'audio', 'mask'} | ({'speaker'} if with_speaker else set()) | (
      {'mel'} if with_mel else set())
  assert set(batch) == expected_keys
  assert batch['audio'].shape == (4, LENGTH) and batch['audio'].dtype == np.int32
  assert batch['mask'].shape == (4, LENGTH) and batch['mask'].dtype == np.float32
  if with_speaker:
    assert batch['speaker'].shape == (4,) and batch['speaker'].dtype == np.int32
  if with_mel:
    assert batch['mel'].shape == (4, -(-LENGTH // HOP), config.mel.n_mels)
    assert batch['mel'].dtype == np.float32


@pytest.mark.slow
def test_crops_are_hop_aligned_padded_masked_and_mel_aligned(prepared):
  config, dataset, clips = prepared
  batches = _train(dataset, 6, with_speaker=True, with_mel=True)
  num_padded = 0
  for batch in batches:
    for row in range(4):
      mask = batch['mask'][row]
      valid = int(mask.sum())
      np.testing.assert_array_equal(mask[:valid], 1.0)
      np.testing.assert_array_equal(batch['audio'][row, valid:],
                                    codecs.Codec('mulaw', mulaw.NUM_CLASSES).silence_class)
      name, start = _identify(batch['audio'][row], mask, clips)
      clip = clips[name]
      assert start % HOP == 0
      assert valid == min(LENGTH, len(clip))
      num_padded += valid < LENGTH
      assert dataset.info.speakers[batch['speaker'][row]] == name.split('/')[0]
      # Mel frame k of the crop = frame start / hop + k of the whole (zero-padded) clip.
      padded_clip = np.concatenate([clip, np.zeros(LENGTH + 256, np.float32)])
      whole = ((audio.log_mel(padded_clip, RATE, config.mel) - dataset.info.mel_mean)
               / dataset.info.mel_std)
      first = start // HOP
      np.testing.assert_allclose(batch['mel'][row], whole[first:first + batch['mel'].shape[1]],
                                 rtol=1e-4, atol=1e-4)
  assert num_padded > 0  # The short clips were padded, not dropped.


@pytest.mark.slow
def test_every_epoch_is_a_permutation_of_the_training_examples(prepared):
  _, dataset, clips = prepared
  n = dataset.info.num_train_examples
  batches = _train(dataset, -(-2 * n // 4))
  rows = [(b['audio'][r], b['mask'][r]) for b in batches for r in range(4)]
  names = [_identify(a, m, clips)[0] for a, m in rows[:2 * n]]
  assert len(set(names[:n])) == n and len(set(names[n:])) == n
  assert names[:n] != names[n:]  # Reshuffled each epoch.


def test_two_hosts_load_disjoint_slices_of_the_one_host_batch(prepared):
  _, dataset, _ = prepared
  one_host = _train(dataset, 4, with_speaker=True, with_mel=True)
  hosts = [_train(dataset, 4, process_index=h, process_count=2, with_speaker=True,
                  with_mel=True) for h in range(2)]
  for step in range(4):
    assert hosts[0][step]['audio'].shape == (2, LENGTH)
    concatenated = {key: np.concatenate([hosts[0][step][key], hosts[1][step][key]])
                    for key in one_host[step]}
    _assert_batches_equal([concatenated], [one_host[step]])
  assert not np.array_equal(one_host[0]['audio'], one_host[1]['audio'])


def test_resume_is_exact_on_one_and_on_two_hosts(prepared):
  _, dataset, _ = prepared
  uninterrupted = _train(dataset, 5, seed=3)
  _assert_batches_equal(_train(dataset, 2, seed=3, start_step=3), uninterrupted[3:])
  hosts = [_train(dataset, 2, seed=3, start_step=3, process_index=h, process_count=2)
           for h in range(2)]
  resumed = [{key: np.concatenate([hosts[0][s][key], hosts[1][s][key]]) for key in hosts[0][s]}
             for s in range(2)]
  _assert_batches_equal(resumed, uninterrupted[3:])
  other_seed = _train(dataset, 1, seed=4)
  assert not np.array_equal(other_seed[0]['audio'], uninterrupted[0]['audio'])


@pytest.mark.slow
def test_eval_batches_are_deterministic_and_sliced_by_host(prepared):
  _, dataset, clips = prepared
  info = dataset.info

  def evaluate(process_index=0, process_count=1):
    return list(dataset.eval_batches(
        receptive_field=RECEPTIVE_FIELD, global_batch_size=4, num_batches=3,
        process_index=process_index, process_count=process_count, with_mel=True))

  first = evaluate()
  assert len(first) == 3
  _assert_batches_equal(evaluate(), first)
  # Built once per run, the batches are read again at every evaluation: the same each pass.
  batches = dataset.eval_batches(receptive_field=RECEPTIVE_FIELD, global_batch_size=4,
                                 num_batches=3, with_mel=True)
  _assert_batches_equal(list(batches), first)
  _assert_batches_equal(list(batches), first)
  hosts = [evaluate(h, 2) for h in range(2)]
  joined = [{key: np.concatenate([hosts[0][s][key], hosts[1][s][key]]) for key in first[s]}
            for s in range(3)]
  _assert_batches_equal(joined, first)
  validation = {_identify(b['audio'][r], b['mask'][r], clips)[0] for b in first for r in range(4)}
  assert len(validation) == info.num_validation_examples


def test_first_crop_is_the_first_row_of_the_first_validation_batch(prepared):
  _, dataset, _ = prepared
  crop = dataset.first_crop(receptive_field=RECEPTIVE_FIELD, seed=7, with_speaker=True,
                            with_mel=True)
  batch = next(iter(dataset.eval_batches(receptive_field=RECEPTIVE_FIELD, global_batch_size=4,
                                         num_batches=1, with_speaker=True, with_mel=True)))
  _assert_batches_equal([crop], [{key: value[:1] for key, value in batch.items()}])


def test_a_run_resolves_the_dataset_source_once(prepared, monkeypatch):
  config, _, _ = prepared
  resolved = []
  audio_source = input_pipeline.datasets.audio_source
  monkeypatch.setattr(input_pipeline.datasets, 'audio_source',
                      lambda *args: resolved.append(args) or audio_source(*args))
  dataset = input_pipeline.prepare_dataset(config)
  _train(dataset, 1, with_mel=True)
  for _ in range(2):
    list(dataset.eval_batches(receptive_field=RECEPTIVE_FIELD, global_batch_size=4,
                              num_batches=1))
  dataset.first_crop(receptive_field=RECEPTIVE_FIELD, seed=0)
  assert len(resolved) == 1


def test_batch_size_must_divide_among_hosts(prepared):
  _, dataset, _ = prepared
  with pytest.raises(ValueError, match='multiple of the number of processes'):
    _train(dataset, 1, global_batch_size=3, process_count=2)


def test_top_db_trims_silence_before_cropping(tmp_path):
  """A burst between long silences: trimmed, the crops only cover the burst's neighbourhood."""
  rng = np.random.default_rng(1)
  silence = np.zeros(8000, np.float32)
  clip = np.concatenate([silence, rng.uniform(-0.5, 0.5, 300).astype(np.float32), silence])
  (tmp_path / 'wavs').mkdir()
  audio.write_wav(tmp_path / 'wavs' / 'burst.wav', clip, RATE)
  config = default.get_config().data
  config.update(wav_dir=str(tmp_path / 'wavs'), data_dir=str(tmp_path / 'tfds'),
                sample_rate=RATE, segment_length=6000 - RECEPTIVE_FIELD,
                validation_fraction=0.0, read_threads=1)
  config.mel.update(n_mels=16, hop_length=HOP, n_fft=256, fmax=RATE / 2)
  for top_db, expect_trimmed in ((0.0, False), (40.0, True)):
    config.top_db = top_db
    dataset = input_pipeline.prepare_dataset(config)
    batch, = _train(dataset, 1, global_batch_size=1, seed=2)
    # No validation split: clips are conditioned on the first training crop.
    _assert_batches_equal([dataset.first_crop(receptive_field=RECEPTIVE_FIELD, seed=2)], [batch])
    valid = int(batch['mask'][0].sum())
    if expect_trimmed:
      # librosa trims whole analysis frames (2048 / 512): some silence may remain.
      assert 300 <= valid < 300 + 2 * 2048
    else:
      assert valid == 6000
  assert dataset.info.num_validation_examples == 0
  with pytest.raises(ValueError, match='validation split .* is empty'):
    dataset.eval_batches(receptive_field=RECEPTIVE_FIELD, global_batch_size=1, num_batches=1)


def _dominant_frequency(waveform, rate):
  spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
  return np.argmax(spectrum) * rate / len(waveform)


def test_speed_perturbation_plays_training_crops_faster_or_slower(tmp_path):
  """A 1000 Hz tone: perturbed crops hold tones spread over [900, 1100] Hz, deterministically."""
  tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(3 * RATE) / RATE).astype(np.float32)
  (tmp_path / 'wavs').mkdir()
  for i in range(4):
    audio.write_wav(tmp_path / 'wavs' / f'tone{i}.wav', tone, RATE)
  config = default.get_config().data
  config.update(wav_dir=str(tmp_path / 'wavs'), data_dir=str(tmp_path / 'tfds'),
                sample_rate=RATE, segment_length=SEGMENT, validation_fraction=0.0,
                read_threads=1, speed_perturbation=0.1)
  config.mel.update(n_mels=16, hop_length=HOP, n_fft=256, fmax=RATE / 2)
  dataset = input_pipeline.prepare_dataset(config)
  batches = _train(dataset, 8, seed=5)
  frequencies = [_dominant_frequency(mulaw.decode(row), RATE)
                 for batch in batches for row in batch['audio']]
  # FFT bins of a LENGTH-sample crop are RATE / LENGTH = 31 Hz apart.
  assert all(900 - 31 <= f <= 1100 + 31 for f in frequencies), frequencies
  assert max(frequencies) - min(frequencies) >= 100, frequencies
  assert all(np.array_equal(batch['mask'], np.ones_like(batch['mask'])) for batch in batches)
  _assert_batches_equal(_train(dataset, 3, seed=5, start_step=5), batches[5:])
  config.speed_perturbation = 0.0
  unperturbed = [_dominant_frequency(mulaw.decode(row), RATE)
                 for row in _train(dataset, 1, seed=5)[0]['audio']]
  assert all(abs(f - 1000) <= 31 for f in unperturbed), unperturbed
  config.speed_perturbation = 0.1
  with pytest.raises(ValueError, match='speed_perturbation'):
    _train(dataset, 1, with_mel=True)


@pytest.mark.slow
def test_pcm_codec_and_preemphasis_encode_the_filtered_clip(prepared):
  """Mixture-head crops hold the clip's exact 16-bit samples, pre-emphasised when configured."""
  config, dataset, clips = prepared
  pcm = codecs.Codec('pcm', codecs.PCM16_CLASSES)
  plain = _train(dataset, 2, codec=pcm)
  mulaw_batches = _train(dataset, 2)
  emphasised = _train(dataset, 2, codec=codecs.Codec('pcm', codecs.PCM16_CLASSES, 0.9))
  for plain_batch, mulaw_batch, emphasised_batch in zip(plain, mulaw_batches, emphasised):
    np.testing.assert_array_equal(plain_batch['mask'], mulaw_batch['mask'])
    for row in range(len(plain_batch['audio'])):
      name, start = _identify(mulaw_batch['audio'][row], mulaw_batch['mask'][row], clips)
      valid = int(plain_batch['mask'][row].sum())
      clip = clips[name]
      np.testing.assert_array_equal(plain_batch['audio'][row, :valid],
                                    pcm.encode(clip[start:start + valid]))
      # The whole clip filtered, then cut: the crop's first sample sees the one before it.
      filtered = codecs.preemphasize(clip, 0.9)[start:start + valid]
      np.testing.assert_array_equal(emphasised_batch['audio'][row, :valid], pcm.encode(filtered))
      np.testing.assert_array_equal(plain_batch['audio'][row, valid:], pcm.silence_class)
