"""Tests of audio I/O and log-mel features (wavenet_jax/audio.py)."""
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import soundfile

from wavenet_jax import audio

MEL = ml_collections.ConfigDict(dict(n_mels=20, hop_length=64, n_fft=256, fmin=0.0, fmax=4000.0))
RATE = 8000
# The speech configs' features (config.data.mel at 16 kHz).
MEL_16K = ml_collections.ConfigDict(
    dict(n_mels=80, hop_length=256, n_fft=1024, fmin=0.0, fmax=8000.0))


@pytest.fixture(name='librosa')
def _librosa():
  """librosa, the reference the numpy / soxr features are checked against (skips without it)."""
  return pytest.importorskip('librosa')


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


def _random_audio(num_samples, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, num_samples).astype(np.float32)


@pytest.mark.parametrize('from_rate,to_rate', [(44100, 16000), (48000, 16000), (8000, 16000),
                                               (22050, 16000), (16000, 24000)])
@pytest.mark.parametrize('num_samples', [1, 7, 1000, 44101, 96003])
def test_resample_equals_librosa_soxr_hq(librosa, from_rate, to_rate, num_samples):
  clip = _random_audio(num_samples)
  expected = librosa.resample(clip, orig_sr=from_rate, target_sr=to_rate, res_type='soxr_hq')
  resampled = audio.resample(clip, from_rate, to_rate)
  assert resampled.dtype == np.float32
  assert len(resampled) == int(np.ceil(num_samples * to_rate / from_rate))
  np.testing.assert_array_equal(resampled, expected.astype(np.float32))


@pytest.mark.parametrize('factor', [0.9, 1.1, 1.37])
@pytest.mark.parametrize('num_samples', [1, 999, 16000, 16001])
def test_change_speed_equals_librosa_soxr_hq(librosa, factor, num_samples):
  clip = _random_audio(num_samples, seed=1)
  expected = librosa.resample(clip, orig_sr=factor, target_sr=1.0, res_type='soxr_hq')
  np.testing.assert_array_equal(audio.change_speed(clip, factor), expected.astype(np.float32))


@pytest.mark.parametrize('sample_rate,n_fft,n_mels,fmin,fmax', [
    (16000, 1024, 80, 0.0, 8000.0), (22050, 1024, 80, 0.0, 8000.0), (16000, 512, 8, 50.0, 7000.0)])
def test_mel_basis_equals_librosa_slaney_filterbank(librosa, sample_rate, n_fft, n_mels, fmin,
                                                    fmax):
  basis = audio._mel_basis(sample_rate, n_fft, n_mels, fmin, fmax)
  assert basis.dtype == np.float32 and basis.shape == (n_mels, n_fft // 2 + 1)
  expected = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
  np.testing.assert_allclose(basis, expected, rtol=0, atol=1e-6)


def _librosa_log_mel(librosa, clip, sample_rate, mel_config, start=0, num_samples=None):
  """audio.log_mel as it was computed with librosa (stft, filters.mel) before it was numpy."""
  mel = librosa_mel(librosa, clip, sample_rate, mel_config, start, num_samples)
  return np.log(np.maximum(mel, audio.MEL_FLOOR)).astype(np.float32)


def librosa_mel(librosa, clip, sample_rate, mel_config, start=0, num_samples=None):
  """float32 [frames, n_mels] mel magnitudes by librosa, framed as audio.log_mel frames."""
  hop, n_fft = mel_config.hop_length, mel_config.n_fft
  if num_samples is None:
    num_samples = len(clip) - start
  frames = audio.num_mel_frames(num_samples, hop)
  window_start = start - (n_fft - hop) // 2
  window_stop = window_start + n_fft + (frames - 1) * hop
  span = np.zeros(window_stop - window_start, dtype=np.float32)
  source_start, source_stop = max(window_start, 0), min(window_stop, len(clip))
  span[source_start - window_start:source_stop - window_start] = clip[source_start:source_stop]
  spectrum = np.abs(librosa.stft(span, n_fft=n_fft, hop_length=hop, center=False))
  basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=mel_config.n_mels,
                              fmin=mel_config.fmin, fmax=mel_config.fmax)
  return np.einsum('mf,ft->tm', basis, spectrum)


@pytest.mark.parametrize('signal', ['random', 'sine'])
@pytest.mark.parametrize('sample_rate,mel_config', [(RATE, MEL), (16000, MEL_16K)])
def test_log_mel_equals_the_librosa_computation(librosa, signal, sample_rate, mel_config):
  if signal == 'random':
    clip = 0.5 * _random_audio(3 * sample_rate // 2, seed=2)
  else:
    clip = _tone(seconds=1.5, rate=sample_rate, frequency=440.0)
  hop = mel_config.hop_length
  for start, num_samples in [(0, None), (7 * hop, 50 * hop + 3), (len(clip) - 5 * hop, 9 * hop)]:
    expected = _librosa_log_mel(librosa, clip, sample_rate, mel_config, start, num_samples)
    computed = audio.log_mel(clip, sample_rate, mel_config, start, num_samples)
    assert computed.dtype == np.float32 and computed.shape == expected.shape
    np.testing.assert_allclose(computed, expected, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_importing_audio_does_not_import_librosa():
  """librosa (with numba, llvmlite, scikit-learn) is too heavy for a light accelerator install."""
  probe = "import sys; import wavenet_jax.audio; print('librosa' in sys.modules)"
  result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True,
                          check=True)
  assert result.stdout.strip() == 'False'


def test_trim_silence_without_librosa_says_how_to_install_it(monkeypatch):
  monkeypatch.setitem(sys.modules, 'librosa', None)  # Makes `import librosa` raise ImportError.
  assert not audio.librosa_available()
  with pytest.raises(ValueError, match=r"top_db > 0 .* pip install 'wavenet-jax\[librosa\]'"):
    audio.trim_silence(_tone(), top_db=30.0)


@pytest.mark.usefixtures('librosa')
def test_trim_silence_drops_the_silent_ends():
  assert audio.librosa_available()
  clip = np.concatenate([np.zeros(4000, np.float32), _tone(), np.zeros(4000, np.float32)])
  trimmed = audio.trim_silence(clip, top_db=30.0)
  assert len(_tone()) <= len(trimmed) < len(clip) - 4000
