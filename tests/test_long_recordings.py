"""Long recordings: prepared as a stream, stored as pieces, crops uniform over the audio."""
import itertools

import numpy as np
import pytest
import soundfile

from experiments import default
from wavenet_jax import audio
from wavenet_jax import codecs
from wavenet_jax import input_pipeline
from wavenet_jax.datasets import audio_folder

RATE = 8000
# 3.75 s of a ramp: int16 sample t = t - 15_000 tells a crop's position (within +-2^14,
# where int16 -> float -> int16 is exact).
LONG_SAMPLES = 30_000
RAMP = (np.arange(LONG_SAMPLES) - LONG_SAMPLES // 2).astype(np.int16)
PCM = codecs.Codec('pcm', codecs.PCM16_CLASSES)
CROP = dict(receptive_field=16, codec=PCM)


@pytest.fixture(scope='module', autouse=True)
def short_pieces():
  """Pieces of 1 s, margins of 0.25 s: files over 2.25 s are long."""
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(audio_folder, 'PIECE_SECONDS', 1)
    patch.setattr(audio_folder, 'PIECE_MARGIN_SECONDS', 0.25)
    patch.setattr(audio_folder, 'LONG_SECONDS', 2.25)
    yield


@pytest.fixture(scope='module')
def long_folder(tmp_path_factory):
  """(config.data, PreparedDataset) of a folder: one long ramp recording, four short clips."""
  root = tmp_path_factory.mktemp('long')
  (root / 'wavs' / 'spk').mkdir(parents=True)
  soundfile.write(root / 'wavs' / 'spk' / 'long.wav', RAMP, RATE, subtype='PCM_16')
  for i in range(4):
    audio.write_wav(root / 'wavs' / 'spk' / f'short{i}.wav', np.full(800, 0.01 * i), RATE)
  config = default.get_config().data
  config.update(wav_dir=str(root / 'wavs'), data_dir=str(root / 'tfds'), sample_rate=RATE,
                segment_length=240, validation_fraction=0.0, read_threads=1)
  config.mel.update(n_mels=16, hop_length=64, n_fft=256, fmax=RATE / 2)
  return config, input_pipeline.prepare_dataset(config)


@pytest.mark.parametrize('length', [100, 2000, 2001, 5000, 12_345])
def test_pieces_hold_every_start_once_with_margins(length):
  rng = np.random.default_rng(length)
  waveform = rng.standard_normal(length).astype(np.float32)
  blocks = np.split(waveform, np.sort(rng.integers(0, length, 5)))
  stride, margin = 1000, 250  # 1 s and 0.25 s at 1 kHz.
  made = list(audio_folder.pieces(blocks, 1000))
  owned = [piece[offset:offset + starts] for piece, offset, starts in made]
  np.testing.assert_array_equal(np.concatenate(owned), waveform)
  for k, (piece, offset, starts) in enumerate(made):
    assert offset == (0 if k == 0 else margin)
    if k < len(made) - 1:  # The last holds what follows: between 1 and 2 strides of starts.
      assert starts == stride and len(piece) == offset + stride + margin
    else:
      assert len(piece) == offset + starts and starts < 2 * stride + margin


def test_a_long_recording_is_stored_as_pieces_of_one_split(long_folder):
  _, dataset = long_folder
  metadata = dataset.source.builder.info.metadata
  assert metadata['pieced'] == ['spk/long.wav']
  assert metadata['num_samples'] == {'train': LONG_SAMPLES + 4 * 800}
  examples = dataset.source.data_source('train')
  files = [examples[i]['file'].decode() for i in range(len(examples))]
  assert files.count('spk/long.wav') == 3 and len(files) == 7  # The last: [16000, 30000).
  assert any('stored as pieces' in line for line in dataset.source.describe())


def test_crops_are_uniform_over_the_recording_and_deterministic(long_folder):
  config, dataset = long_folder
  ramp = PCM.encode(audio.pcm16_to_float(RAMP))
  batches = dataset.train_batches(global_batch_size=7, seed=3, **CROP)
  starts = []
  for batch in itertools.islice(batches, 150):
    for row, mask in zip(batch['audio'], batch['mask']):
      start = int(row[0]) - 32768 + LONG_SAMPLES // 2
      if mask.all() and np.array_equal(row, ramp[start:start + len(row)]):
        starts.append(start)
  assert len(starts) == 150 * 3
  starts = np.array(starts)
  crop = 16 + config.segment_length
  assert np.all(starts % 64 == 0) and starts.min() >= 0 and starts.max() <= LONG_SAMPLES - crop
  counts, _ = np.histogram(starts, bins=5, range=(0, LONG_SAMPLES))
  assert counts.min() > 0.7 * len(starts) / 5, counts
  again = next(dataset.train_batches(global_batch_size=7, seed=3, start_step=149, **CROP))
  np.testing.assert_array_equal(again['audio'], batch['audio'])


def test_a_crop_longer_than_the_pieces_margin_is_an_error(long_folder):
  _, dataset = long_folder
  with pytest.raises(ValueError, match='pieces of long recordings'):
    dataset.train_batches(global_batch_size=2, seed=0, receptive_field=2000)


def test_a_streamed_file_matches_one_decoded_whole(tmp_path):
  path = tmp_path / 'long48k.wav'
  t = np.arange(3 * 48_000) / 48_000
  soundfile.write(path, np.stack([np.sin(2 * np.pi * 440 * t), np.cos(2 * np.pi * 300 * t)], 1)
                  .astype(np.float32) * 0.5, 48_000, subtype='PCM_16')
  blocks = audio_folder._stream(path, RATE)  # pylint: disable=protected-access
  streamed = np.concatenate(list(blocks))
  whole = audio.load_audio(path, RATE)
  assert abs(len(streamed) - len(whole)) <= 1
  np.testing.assert_allclose(streamed[100:len(whole) - 100], whole[100:-100], atol=1e-4)
