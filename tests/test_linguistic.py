"""The paper's linguistic features from .lab files (wavenet_jax.linguistic) and their command."""
import subprocess
import sys

import numpy as np
import pytest

from experiments import default
from wavenet_jax import audio
from wavenet_jax import audio_metrics
from wavenet_jax import input_pipeline
from wavenet_jax import linguistic

RATE = 16000
HOP = 80  # 5 ms frames.
PHONES = ('pau', 'dh', 'ax', 'k')
WIDTH = len(PHONES) + 1  # One-hot width: the phones and the unknown one (index 4).
EXTRA = 3 * WIDTH  # Channel of the position inside the phone.
# 'qq' is not in PHONES: the unknown index.
LAB = ('start\tend\tphone\tvowel\tstress\tword\tsyl_in_word\tword_syls\n'
       '0.0000\t0.0200\tpau\t0\t0\t-\t0\t0\n'
       '0.0200\t0.0500\tdh\t0\t0\tThe\t0\t1\n'
       '0.0500\t0.1000\tqq\t0\t1\tThe\t0\t1\n'
       '0.1000\t0.1200\tax\t1\t1\tThe\t0\t1\n')


def _one_hot(frame: np.ndarray, block: int) -> int:
  """The phone index that one-hot block (0 previous, 1 current, 2 next) of a frame holds."""
  hot = np.flatnonzero(frame[block * WIDTH:(block + 1) * WIDTH])
  assert len(hot) == 1, frame
  return int(hot[0])


def test_label_frames_hold_phone_neighbours_positions_and_flags(tmp_path):
  (tmp_path / 'a.lab').write_text(LAB)
  segments = linguistic.read_lab(tmp_path / 'a.lab')
  frames = linguistic.label_frames(segments, 24, HOP, RATE, PHONES)  # 0.12 s.
  assert frames.shape == (24, linguistic.num_channels(PHONES) - 2)
  unknown = len(PHONES)
  # Frame k's centre is at 5 k + 2.5 ms: frames 0-3 pau, 4-9 dh, 10-19 qq, 20-23 ax.
  expected = {0: (0, 0, 1), 3: (0, 0, 1), 4: (0, 1, unknown), 9: (0, 1, unknown),
              10: (1, unknown, 2), 19: (1, unknown, 2), 20: (unknown, 2, 0), 23: (unknown, 2, 0)}
  for k, (previous, current, following) in expected.items():
    assert (_one_hot(frames[k], 0), _one_hot(frames[k], 1), _one_hot(frames[k], 2)) == (
        previous, current, following), k
  np.testing.assert_allclose(frames[4:10, EXTRA], (np.arange(6) * 5 + 2.5) / 30, rtol=1e-5)
  np.testing.assert_allclose(frames[10:20, EXTRA + 1], 0.05, rtol=1e-5)  # Duration (s).
  np.testing.assert_array_equal(frames[:, EXTRA + 2], [0] * 20 + [1] * 4)  # Vowel.
  np.testing.assert_array_equal(frames[:, EXTRA + 3], [0] * 10 + [1] * 14)  # Stress.


def test_frames_past_the_labels_are_the_last_phone(tmp_path):
  (tmp_path / 'a.lab').write_text(LAB)
  frames = linguistic.label_frames(linguistic.read_lab(tmp_path / 'a.lab'), 26, HOP, RATE, PHONES)
  assert _one_hot(frames[25], 1) == 2 and frames[25, EXTRA] == 1.0


def test_log_f0_is_interpolated_through_unvoiced_frames_and_pauses_are_unvoiced():
  labels = np.zeros((6, 3), np.float32)
  f0 = np.array([100, 0, 0, 400, 200, 200], np.float32)
  voiced = np.array([True, False, False, True, True, True])
  pauses = np.array([False, False, False, False, False, True])
  frames = linguistic.combine(labels, f0, voiced, pauses)
  np.testing.assert_allclose(np.exp(frames[:, 3]),
                             [100, 100 * 4 ** (1 / 3), 100 * 4 ** (2 / 3), 400, 200, 200],
                             rtol=1e-5)  # Log-linear between voiced frames, held after them.
  np.testing.assert_array_equal(frames[:, 4], [1, 0, 0, 1, 1, 0])
  nothing = linguistic.combine(labels, f0, np.zeros(6, bool), pauses)
  np.testing.assert_allclose(nothing[:, 3], np.log(linguistic.F0_MIN))


def test_a_malformed_lab_row_is_named_by_line(tmp_path):
  (tmp_path / 'bad.lab').write_text(LAB + '0.12\tx\tpau\n')
  with pytest.raises(ValueError, match=r'bad\.lab:6: not a `start end phone vowel stress` row'):
    linguistic.read_lab(tmp_path / 'bad.lab')


def test_the_phone_set_is_a_config_string_of_distinct_phones():
  assert linguistic.phone_set('pau aa  b') == ('pau', 'aa', 'b')
  assert len(linguistic.phone_set(linguistic.FESTIVAL_PHONES)) == 48
  with pytest.raises(ValueError, match='config.data.features.phones must list distinct'):
    linguistic.phone_set('pau pau')


def _sine_folder(root):
  """Two 0.12 s files: a 150 Hz and a 200 Hz tone, with LAB beside each."""
  (root / 'wavs' / 'spk').mkdir(parents=True)
  time = np.arange(int(0.12 * RATE)) / RATE
  for name, hz in (('low', 150.0), ('high', 200.0)):
    audio.write_wav(root / 'wavs' / 'spk' / f'{name}.wav', 0.5 * np.sin(2 * np.pi * hz * time),
                    RATE)
    (root / 'wavs' / 'spk' / f'{name}.lab').write_text(LAB)


@pytest.mark.slow  # pYIN (librosa) and a subprocess.
def test_the_command_and_preparing_a_labelled_folder_make_the_same_features(tmp_path):
  _sine_folder(tmp_path)
  subprocess.run([sys.executable, '-m', 'wavenet_jax.features',
                  f'--wav_dir={tmp_path / "wavs"}', f'--out_dir={tmp_path / "mirror"}',
                  f'--phones={" ".join(PHONES)}'], check=True, capture_output=True)
  written = np.load(tmp_path / 'mirror' / 'spk' / 'low.npy')
  assert written.shape == (24, linguistic.num_channels(PHONES))
  voiced = written[:, -1] > 0
  assert voiced[10:20].all() and not voiced[:4].any()  # The tone; the pause is unvoiced.
  np.testing.assert_allclose(np.exp(written[voiced, -2]), 150.0, rtol=0.03)
  config = default.get_config().data
  config.update(wav_dir=str(tmp_path / 'wavs'), data_dir=str(tmp_path / 'tfds'),
                validation_fraction=0.0, read_threads=1, segment_length=400)
  config.features.update(source='labels', phones=' '.join(PHONES))
  dataset = input_pipeline.prepare_dataset(config)
  examples = dataset.source.data_source('train')
  stored = {examples[i]['file'].decode(): examples[i]['features'] for i in range(2)}
  np.testing.assert_array_equal(stored['spk/low.wav'], written)
  assert dataset.info.features_mean.shape == (linguistic.num_channels(PHONES),)


@pytest.mark.slow  # pYIN (librosa) twice.
def test_a_tone_a_semitone_above_its_features_is_100_cents_off_with_the_pause_unvoiced(tmp_path):
  # What experiments/tools/tts_report.py measures: generated audio's F0 against its features'.
  time = np.arange(int(0.12 * RATE)) / RATE
  tone = (0.5 * np.sin(2 * np.pi * 150.0 * time)).astype(np.float32)
  (tmp_path / 'tone.lab').write_text(LAB)
  given = linguistic.utterance_features(tone, linguistic.read_lab(tmp_path / 'tone.lab'), HOP,
                                        RATE, PHONES)
  given_hz, given_voiced = linguistic.f0_of_features(given)
  pauses = linguistic.pause_frames(given, PHONES)
  np.testing.assert_array_equal(np.flatnonzero(pauses), np.arange(4))  # The first 20 ms.
  np.testing.assert_allclose(given_hz[given_voiced], 150.0, rtol=0.03)
  higher = (0.5 * np.sin(2 * np.pi * 150.0 * 2**(1 / 12) * time)).astype(np.float32)
  hz, voiced = linguistic.f0_frames(higher, len(given), HOP, RATE)
  figures = audio_metrics.f0_agreement(given_hz, given_voiced, hz, voiced & ~pauses)
  assert figures['voiced_in_both'] >= 10
  assert figures['f0_rmse_cents'] == pytest.approx(100.0, abs=15.0)
