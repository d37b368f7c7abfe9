"""features/conventions.py: other models' mels, made by librosa in their conventions, converted.

Each convention's frames are computed here from librosa's mel magnitudes with the formula of the
project it follows; converted, they must equal the vocoder's own log-mel (audio.log_mel) to float
precision wherever that convention did not clip. Settings that no formula converts are one-line
errors; sample.py --features_convention must give what the library call gives (slow).
"""
import subprocess
import sys
import types

import h5py
import jax
import numpy as np
import pytest
import soundfile

import training_runs
from test_audio import _librosa, librosa_mel  # pylint: disable=unused-import; a fixture.
from test_sample import _run_main, _train
from experiments import default
from wavenet_jax import audio
from wavenet_jax import checkpointing
from wavenet_jax import synthesis
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.features import LogMel, FileFeatures
from wavenet_jax.features import conventions

RATE, N_MELS, N_FFT, HOP, FMIN, FMAX = 8000, 20, 256, 64, 0.0, 4000.0
LN10 = np.log(10.0)


def _vocoder() -> LogMel:
  data = default.get_config().data
  data.sample_rate = RATE
  data.mel.update(n_mels=N_MELS, hop_length=HOP, n_fft=N_FFT, fmin=FMIN, fmax=FMAX)
  info = DatasetInfo(sample_rate=RATE, speakers=(), num_train_examples=1,
                     num_validation_examples=0,
                     mel_mean=np.linspace(-8, -2, N_MELS).astype(np.float32),
                     mel_std=np.linspace(1, 3, N_MELS).astype(np.float32))
  return LogMel.from_config(data, info)


def _waveform() -> np.ndarray:
  """1 s: a loud chirp, a quiet tone, noise, and a last quarter of faint noise (mel magnitudes
  below 1e-5 there: the clipped conventions clip)."""
  time = np.arange(RATE) / RATE
  noise = np.random.default_rng(0).standard_normal(RATE) * np.where(time < 0.75, 1e-3, 1e-7)
  return (0.9 * np.sin(2 * np.pi * (100 + 1500 * time) * time) * (time < 0.5)
          + 0.01 * np.sin(2 * np.pi * 700 * time) * (time < 0.75) + noise).astype(np.float32)


def _librosa_db(mel: np.ndarray, ref: float) -> np.ndarray:
  """librosa.amplitude_to_db(mel, ref=ref, amin=1e-5, top_db=None) (librosa imported lazily)."""
  import librosa  # pylint: disable=import-outside-toplevel; optional, as in test_audio.
  return librosa.amplitude_to_db(mel, ref=ref, amin=1e-5, top_db=None)


def _r9y9_db(mel: np.ndarray) -> np.ndarray:
  """r9y9/wavenet_vocoder audio.py: _amp_to_db(mel) - ref_level_db (min_level_db -100, ref 20)."""
  return 20 * np.log10(np.maximum(10 ** (-100 / 20), mel)) - 20


# name (a conventions.parse text), the frames from mel magnitudes, (low, high) clipping levels.
CASES = [
    ('natural', lambda mel: np.log(np.maximum(mel, 1e-5)), (np.log(1e-5), None)),  # NVIDIA.
    ('natural:floor=1e-10', lambda mel: np.log(np.maximum(mel, 1e-10)), (None, None)),  # ESPnet2.
    ('log10', lambda mel: np.log10(np.maximum(mel, 1e-10)), (None, None)),  # ParallelWaveGAN.
    ('db', lambda mel: _librosa_db(mel, ref=1.0), (-100.0, None)),
    ('db:ref_level_db=20', lambda mel: _librosa_db(mel, ref=10.0), (-120.0, None)),
    ('clipped01', lambda mel: np.clip((_r9y9_db(mel) + 100) / 100, 0, 1), (0.0, 1.0)),
    ('symmetric4', lambda mel: np.clip(8 * (_r9y9_db(mel) + 100) / 100 - 4, -4, 4), (-4.0, 4.0)),
    ('asymmetric4', lambda mel: np.clip(4 * (_r9y9_db(mel) + 100) / 100, 0, 4), (0.0, 4.0)),
]


@pytest.fixture
def mels(librosa):
  """(the vocoder's own log-mel of _waveform, librosa's mel magnitudes of it)."""
  waveform = _waveform()
  own = audio.log_mel(waveform, RATE, _vocoder())
  mel = librosa_mel(librosa, waveform, RATE, _vocoder()).astype(np.float64)
  np.testing.assert_allclose(own, np.log(np.maximum(mel, 1e-5)), atol=2e-5)  # Same analysis.
  return own, mel


def _unclipped(frames: np.ndarray, levels: tuple) -> np.ndarray:
  low, high = levels
  keep = np.ones(frames.shape, bool)
  if low is not None:
    keep &= ~np.isclose(frames, low, rtol=0, atol=1e-6)
  if high is not None:
    keep &= ~np.isclose(frames, high, rtol=0, atol=1e-6)
  return keep


@pytest.mark.parametrize('text, make, levels', CASES, ids=[case[0] for case in CASES])
def test_a_converted_mel_is_the_vocoders_own_where_unclipped(mels, text, make, levels):
  own, mel = mels
  frames = make(mel).astype(np.float32)
  converted = conventions.convert_mel(frames, conventions.parse(text), _vocoder())
  assert converted.dtype == np.float32 and converted.shape == own.shape
  keep = _unclipped(frames, levels)
  assert keep.mean() > 0.5  # The comparison covers most of the frames.
  np.testing.assert_allclose(converted[keep], own[keep], rtol=1e-5, atol=2e-5)
  # Clipped values come back at the clipping level: above the vocoder's floor, never below.
  assert np.all(converted >= np.log(audio.MEL_FLOOR))


def test_the_conventions_with_a_higher_floor_clip_here(mels):
  """The test above masks real clipping: the faint quarter is at the floor of [0, 1] and dB."""
  assert (CASES[5][1](mels[1]) == 0).mean() > 0.1
  assert (CASES[3][1](mels[1]) == -100).mean() > 0.1


def test_the_other_models_statistics_are_undone(mels, tmp_path):
  """ParallelWaveGAN: log10 mels normalised with its scaler's mean and scale (stats.h5/.npy)."""
  own, mel = mels
  log10 = np.log10(np.maximum(mel, 1e-10))
  mean, scale = log10.mean(axis=0), log10.std(axis=0)
  np.save(tmp_path / 'stats.npy', np.stack([mean, scale]))
  np.savez(tmp_path / 'stats.npz', mean=mean, scale=scale)
  with h5py.File(tmp_path / 'stats.h5', 'w') as file:  # As its compute-statistics writes it.
    file.create_dataset('mean', data=mean)
    file.create_dataset('scale', data=scale)
  for name in ('stats.npy', 'stats.npz', 'stats.h5'):
    statistics = conventions.read_statistics(str(tmp_path / name))
    convention = conventions.parse('log10', statistics)
    converted = conventions.convert_mel(((log10 - mean) / scale).astype(np.float32),
                                        convention, _vocoder())
    np.testing.assert_allclose(converted, own, rtol=1e-5, atol=2e-5)


def test_the_vocoders_own_convention_converts_to_itself(mels):
  own, _ = mels
  vocoder = _vocoder()
  text = vocoder.describe().splitlines()[-1].split()[-1]
  np.testing.assert_array_equal(
      conventions.convert_mel(own, conventions.parse(text), vocoder), own)


@pytest.mark.parametrize('text, message', [
    ('log10:hop_length=256', r"hop_length=256 of these mels is not the vocoder's 64"),
    ('log10:sample_rate=22050', r"sample_rate=22050 of these mels is not the vocoder's 8000"),
    ('log10:fmax=3800', r"fmax=3800.0 of these mels is not the vocoder's 4000.0"),
    ('log10:fmin=80', r"fmin=80.0 of these mels is not the vocoder's 0.0"),
    ('log10:n_fft=1024', "n_fft=1024"),
    ('log10:win_length=128', "win_length=128"),
    ('symmetric4:preemphasis=0.97', "preemphasis=0.97"),
    ('natural:power=2', "power=2.0"),
    ('natural:mel_scale=htk', "mel_scale=htk"),
    ('natural:n_mels=80', 'the frames have 20 mel bands, the convention states 80'),
])
def test_what_no_formula_converts_is_a_one_line_error(mels, text, message):
  with pytest.raises(ValueError, match=message) as error:
    conventions.convert_mel(mels[0], conventions.parse(text), _vocoder())
  assert '\n' not in str(error.value)


def test_stated_settings_equal_to_the_vocoders_convert():
  frames = np.zeros((3, N_MELS), np.float32)
  convention = conventions.parse(f'natural:sample_rate={RATE},fmax=4000,n_fft={N_FFT},'
                                 f'win_length={N_FFT},mel_norm=slaney,preemphasis=0')
  assert conventions.convert_mel(frames, convention, _vocoder()).shape == (3, N_MELS)


def test_another_band_count_fails_even_unstated():
  with pytest.raises(ValueError, match='the frames have 80 mel bands, the convention states 20'):
    conventions.convert_mel(np.zeros((3, 80)), conventions.parse('log10'), _vocoder())


@pytest.mark.parametrize('text, message', [
    ('log2', "unknown mel convention 'log2'; known: natural, log10, db"),
    ('log10:hop=256', "'hop=256' is not key=value with a key of"),
    ('log10:hop_length=', "'hop_length=' is not key=value"),
    ('log10:fmax=high', "fmax='high' is not a number"),
    ('natural:scale=clipped01', "scale='clipped01' scales decibels: it needs log='db'"),
])
def test_a_bad_convention_text_is_a_one_line_error(text, message):
  with pytest.raises(ValueError, match=message):
    conventions.parse(text)


def test_hdf5_statistics_without_h5py_are_one_line_naming_the_file(tmp_path, monkeypatch):
  monkeypatch.setitem(sys.modules, 'h5py', None)  # import h5py raises ImportError.
  with pytest.raises(ValueError, match=r'stats\.h5: reading HDF5 needs h5py \(pip install h5py\)'):
    conventions.read_statistics(str(tmp_path / 'stats.h5'))


def test_bad_statistics_files_are_named(tmp_path):
  np.save(tmp_path / 'three.npy', np.ones((3, N_MELS)))
  np.savez(tmp_path / 'other.npz', average=np.ones(N_MELS))
  (tmp_path / 'text.npy').write_text('no')
  (tmp_path / 'text.h5').write_text('no')
  for name, message in (('three.npy', r'neither a \[2, n_mels\] array'),
                        ('other.npz', 'neither'), ('text.npy', 'not a .npy or .npz file'),
                        ('text.h5', 'not an HDF5 file')):
    with pytest.raises(ValueError, match=f'{name}: {message}'):
      conventions.read_statistics(str(tmp_path / name))
  statistics = (np.zeros(N_MELS + 1), np.ones(N_MELS + 1))
  with pytest.raises(ValueError, match=r'the statistics have shapes \(21,\) and \(21,\)'):
    conventions.convert_mel(np.zeros((2, N_MELS)), conventions.parse('log10', statistics),
                            _vocoder())


def test_the_description_states_every_setting():
  lines = _vocoder().describe().splitlines()
  text = '\n'.join(lines)
  for stated in ('sample_rate: 8000 Hz', 'n_fft=256', 'hann window of 256 samples',
                 'hop_length=64', 'power 1', 'n_mels=20', 'fmin=0 Hz', 'fmax=4000 Hz',
                 'slaney scale, slaney norm', 'ln(max(mel, 1e-05))',
                 'mean [20] from -8.000 to -2.000', 'std [20] from 1.000 to 3.000',
                 'no pre-emphasis', 'centred on samples [k * 64, (k + 1) * 64)'):
    assert stated in text, stated
  assert lines[-1].endswith('natural:sample_rate=8000,n_fft=256,hop_length=64,n_mels=20,'
                            'fmin=0,fmax=4000')
  files = FileFeatures(hop_length=80, mean=np.zeros(3), std=np.ones(3)).describe()
  assert files.startswith('features from files: float32 [frames, 3] frames, hop_length=80 at '
                          '16000 Hz')


@pytest.fixture(scope='module')
def vocoder_run(tmp_path_factory):
  return _train(tmp_path_factory, 'vocoder', {'model.local_conditioning': True})


@pytest.mark.slow  # Trains, then runs the command in a subprocess.
def test_describe_prints_a_workdirs_convention(vocoder_run):
  result = subprocess.run([sys.executable, '-m', 'wavenet_jax.features.describe',
                           f'--workdir={vocoder_run}'], cwd=training_runs.REPO,
                          env=training_runs.run_env(), capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr
  trained = checkpointing.restore_for_inference(vocoder_run)
  assert result.stdout == f'{vocoder_run} (step {trained.step}):\n{trained.features.describe()}\n'


@pytest.mark.slow  # Trains, then compiles the sampler.
def test_sample_features_convention_writes_the_librarys_synthesis(vocoder_run, tmp_path,
                                                                  capsys):
  trained = checkpointing.restore_for_inference(vocoder_run)
  vocoder = trained.features
  waveform = _waveform()[:4 * vocoder.hop_length]
  log10 = audio.log_mel(waveform, vocoder.sample_rate, vocoder) / LN10
  mean, std = log10.mean(axis=0), log10.std(axis=0) + 0.1
  np.save(tmp_path / 'mel.npy', ((log10 - mean) / std).astype(np.float32))
  np.save(tmp_path / 'stats.npy', np.stack([mean, std]))
  output = tmp_path / 'out.wav'
  result = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={output}',
                     f'--features={tmp_path / "mel.npy"}', '--features_convention=log10',
                     f'--features_stats={tmp_path / "stats.npy"}', '--segments=1', '--seed=3')
  assert result.returncode == 0, result.stderr
  written, _ = soundfile.read(output, dtype='float32')
  frames = conventions.convert_mel(np.load(tmp_path / 'mel.npy'), conventions.parse(
      'log10', conventions.read_statistics(str(tmp_path / 'stats.npy'))), vocoder)
  expected = synthesis.synthesize(trained.model, trained.variables, jax.random.key(3),
                                  num_samples=len(frames) * vocoder.hop_length - 1,
                                  batch_size=1, segments=1,
                                  **trained.conditioning(1, features=frames))[0]
  np.testing.assert_allclose(written, np.clip(expected, -1, 1), atol=1 / 32768)
  mismatch = _run_main(capsys, f'--workdir={vocoder_run}', f'--output={tmp_path}/bad.wav',
                       f'--features={tmp_path / "mel.npy"}',
                       f'--features_convention=log10:hop_length={vocoder.hop_length + 1}')
  assert mismatch.returncode != 0 and 'generating' not in mismatch.stdout
  assert mismatch.last_error_line.endswith(
      f"--features={tmp_path / 'mel.npy'} as --features_convention=log10:hop_length="
      f"{vocoder.hop_length + 1}: hop_length={vocoder.hop_length + 1} of these mels is not the "
      f"vocoder's {vocoder.hop_length}: no exact conversion exists (a vocoder decodes only its "
      'own analysis).'), mismatch.last_error_line


@pytest.mark.parametrize('extra_flags, message', [
    (['--features_convention=log10'], '--features_convention and --features_stats convert '
     '--features frames: they need --features.'),
    (['--features={tmp}/mel.npy', '--features_stats={tmp}/mel.npy'],
     "--features_stats needs --features_convention"),
    (['--features={tmp}/mel.npy', '--features_convention=log10',
      '--features_stats={tmp}/missing.npy'],
     '--features_stats={tmp}/missing.npy: the file does not exist.'),
    (['--features={tmp}/mel.npy', '--features_convention=log10',
      '--features_stats={tmp}/mel.npy'],
     r"--features_stats={tmp}/mel.npy: neither a [2, n_mels] array"),
    (['--features={tmp}/mel.npy', '--features_convention=log2'],
     "--features_convention=log2: unknown mel convention 'log2'"),
])
def test_bad_convention_flags_fail_before_the_checkpoint_is_read(tmp_path, capsys, monkeypatch,
                                                                 extra_flags, message):
  np.save(tmp_path / 'mel.npy', np.zeros((4, N_MELS), np.float32))

  def no_restore(*args, **kwargs):
    raise AssertionError('restored a checkpoint despite a bad flag')

  monkeypatch.setattr(checkpointing, 'restore_for_inference', no_restore)
  result = _run_main(capsys, f'--workdir={tmp_path}/no_run', f'--output={tmp_path}/out.wav',
                     *[flag.format(tmp=tmp_path) for flag in extra_flags])
  assert result.returncode == 1
  assert len(result.stderr.strip().splitlines()) == 1, result.stderr
  assert f': error: {message.format(tmp=tmp_path)}' in result.last_error_line


def test_a_convention_for_a_model_that_is_no_mel_vocoder_is_refused(tmp_path, capsys,
                                                                    monkeypatch):
  np.save(tmp_path / 'mel.npy', np.zeros((4, 3), np.float32))
  files_model = types.SimpleNamespace(
      features=FileFeatures(hop_length=80, mean=np.zeros(3), std=np.ones(3)))
  monkeypatch.setattr(checkpointing, 'restore_for_inference', lambda *args: files_model)
  result = _run_main(capsys, f'--workdir={tmp_path}/run', f'--output={tmp_path}/out.wav',
                     f'--features={tmp_path}/mel.npy', '--features_convention=log10')
  assert result.returncode == 1
  assert result.last_error_line.endswith(
      '--features_convention=log10: converts mels for a mel vocoder; this model is not one.')
