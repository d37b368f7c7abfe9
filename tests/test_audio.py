"""Tests of audio I/O and log-mel features (wavenet_jax/audio.py)."""
import ml_collections
import numpy as np
import pytest
import soundfile

from wavenet_jax import audio

MEL = ml_collections.ConfigDict(dict(n_mels=20, hop_length=64, n_fft=256, fmin=0.0, fmax=4000.0))
RATE = 8000


def _tone(seconds=0.5, rate=RATE, frequency=440.0):
  t = np.arange(int(seconds * rate)) / rate
  return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_write_then_load_round_trip(tmp_path):
  path = tmp_path / 'tone.wav'
  audio.write_wav(path, _tone(), RATE)
  loaded = audio.load_audio(path, RATE)
  assert loaded.dtype == np.float32 and loaded.shape == _tone().shape
  np.testing.assert_allclose(loaded, _tone(), atol=1.0 / 32767)


def test_load_mixes_stereo_down_and_resamples(tmp_path):
  left, right = _tone(frequency=300), _tone(frequency=500)
  path = tmp_path / 'stereo.flac'
  soundfile.write(path, np.stack([left, right], axis=1), RATE, subtype='PCM_16')
  mono = audio.load_audio(path, RATE)
  np.testing.assert_allclose(mono, (left + right) / 2, atol=2.0 / 32767)
  resampled = audio.load_audio(path, 2 * RATE)
  assert resampled.shape == (2 * len(left),)
  assert resampled.dtype == np.float32


@pytest.mark.parametrize('kind', ['empty', 'text', 'nan', 'zero_frames'])
def test_unusable_files_raise_an_error_naming_the_file(tmp_path, kind):
  path = tmp_path / f'{kind}.wav'
  if kind == 'empty':
    path.write_bytes(b'')
  elif kind == 'text':
    path.write_text('not audio at all')
  elif kind == 'nan':
    samples = _tone()
    samples[3] = np.nan
    soundfile.write(path, samples, RATE, subtype='FLOAT')
  else:
    soundfile.write(path, np.zeros(0, np.float32), RATE, subtype='PCM_16')
  with pytest.raises(audio.AudioFileError, match=str(path)):
    audio.load_audio(path, RATE)


@pytest.mark.parametrize('num_samples', [1, 63, 64, 65, 1000])
def test_log_mel_has_one_frame_per_hop(num_samples):
  mel = audio.log_mel(_tone()[:num_samples], RATE, MEL)
  assert mel.shape == (-(-num_samples // MEL.hop_length), MEL.n_mels)
  assert mel.dtype == np.float32


def test_log_mel_frame_k_covers_hop_interval_k():
  """An impulse in the middle of hop interval k peaks in frame k."""
  hop = MEL.hop_length
  for k in (0, 3, 7):
    clicks = np.zeros(10 * hop, np.float32)
    clicks[k * hop + hop // 2] = 1.0
    energy = np.exp(audio.log_mel(clicks, RATE, MEL)).sum(axis=1)
    assert int(np.argmax(energy)) == k


def test_log_mel_of_a_span_equals_the_frames_of_the_whole_clip():
  clip = _tone(frequency=700) * np.linspace(0, 1, int(0.5 * RATE), dtype=np.float32)
  clip = clip[:len(clip) // MEL.hop_length * MEL.hop_length]
  whole = audio.log_mel(clip, RATE, MEL)
  hop = MEL.hop_length
  span = audio.log_mel(clip, RATE, MEL, start=5 * hop, num_samples=20 * hop + 10)
  np.testing.assert_allclose(span, whole[5:5 + 21], rtol=1e-5, atol=1e-5)
  # A span running past the end reads zeros there: the same as zero-padding the clip.
  tail = audio.log_mel(clip, RATE, MEL, start=len(clip) - 2 * hop, num_samples=6 * hop)
  padded = np.concatenate([clip, np.zeros(4 * hop, np.float32)])
  np.testing.assert_allclose(tail, audio.log_mel(padded, RATE, MEL)[-6:], rtol=1e-5, atol=1e-5)


def test_normalize_mel():
  mel = np.array([[1.0, 4.0], [3.0, 8.0]], np.float32)
  normalized = audio.normalize_mel(mel, np.array([2.0, 6.0]), np.array([1.0, 2.0]))
  np.testing.assert_allclose(normalized, [[-1.0, -1.0], [1.0, 1.0]])
  assert normalized.dtype == np.float32


def test_pcm16_conversion_clips():
  pcm = audio.float_to_pcm16(np.array([-2.0, -1.0, 0.0, 0.5, 1.5], np.float32))
  assert pcm.dtype == np.int16
  np.testing.assert_array_equal(pcm, [-32767, -32767, 0, 16384, 32767])
  np.testing.assert_allclose(audio.pcm16_to_float(pcm), pcm / 32768.0)


def test_log_mel_of_nothing_has_no_frames():
  assert audio.log_mel(np.zeros(0, np.float32), RATE, MEL).shape == (0, MEL.n_mels)


@pytest.mark.parametrize('factor', [0.9, 1.1])
def test_change_speed_scales_pitch_and_length(factor):
  rate = 8000
  tone = np.sin(2 * np.pi * 500 * np.arange(rate) / rate).astype(np.float32)
  changed = audio.change_speed(tone, factor)
  assert changed.dtype == np.float32
  assert len(changed) == int(np.ceil(rate / factor))
  spectrum = np.abs(np.fft.rfft(changed * np.hanning(len(changed))))
  assert np.argmax(spectrum) * rate / len(changed) == pytest.approx(500 * factor, abs=2.0)
