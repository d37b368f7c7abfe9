"""Tests of the TFDS datasets: audio folders with bad files, the embedded corpus, the catalog."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import soundfile
import tensorflow_datasets as tfds

from experiments import default
from wavenet_jax import datasets
from wavenet_jax import file_listing
from wavenet_jax import input_pipeline
from wavenet_jax import mulaw
from wavenet_jax.datasets import audio_folder
from wavenet_jax.datasets import catalog

REPO = pathlib.Path(__file__).resolve().parent.parent
RATE = 8000
GOOD_FILES = ('alice/a1.wav', 'alice/a2.flac', 'bob/b_48k.wav', 'bob/stereo.ogg', 'bob/short.wav',
              'bob/loud.wav', 'bob/truncated.wav', 'top.wav')
SKIPPED_FILES = {  # path -> words of the reason
    'bob/empty.wav': 'cannot decode', 'bob/text.wav': 'cannot decode',
    'bob/corrupt.flac': 'cannot decode', 'bob/nan.wav': 'NaN',
    'alice/missing.wav': 'does not exist'}
# The bad folder's metadata.csv rows not used or overridden.
METADATA_PROBLEMS = ("line 5: 'alice/a1.wav' is the file of line 2 too: line 5 is used",
                     'line 6: a quote is opened and never closed: the row is not used')


def _tone(seconds, rate=RATE, frequency=220.0):
  t = np.arange(int(seconds * rate)) / rate
  return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def _write_bad_folder(root):
  """A folder with good files, every kind of bad file, metadata.csv and a non-audio file."""
  for speaker in ('alice', 'bob'):
    (root / speaker).mkdir(parents=True)
  soundfile.write(root / 'alice/a1.wav', _tone(0.3), RATE, subtype='PCM_16')
  soundfile.write(root / 'alice/a2.flac', _tone(0.4), RATE, subtype='PCM_16')
  soundfile.write(root / 'bob/b_48k.wav', _tone(0.25, rate=48000), 48000, subtype='PCM_16')
  soundfile.write(root / 'bob/stereo.ogg', np.stack([_tone(0.3), _tone(0.3, frequency=330)], 1),
                  RATE)
  soundfile.write(root / 'bob/short.wav', _tone(0.01), RATE, subtype='PCM_16')
  soundfile.write(root / 'bob/loud.wav', 3 * _tone(0.2), RATE, subtype='FLOAT')
  soundfile.write(root / 'top.wav', _tone(0.2), RATE, subtype='PCM_16')
  soundfile.write(root / 'full.wav', _tone(0.5), RATE, subtype='PCM_16')
  whole = (root / 'full.wav').read_bytes()
  (root / 'bob/truncated.wav').write_bytes(whole[:len(whole) // 2])
  os.remove(root / 'full.wav')
  (root / 'bob/empty.wav').write_bytes(b'')
  (root / 'bob/text.wav').write_text('this is not audio')
  (root / 'bob/corrupt.flac').write_bytes(b'fLaC' + bytes(range(256)) * 2)
  with_nan = _tone(0.2)
  with_nan[5] = np.inf
  soundfile.write(root / 'bob/nan.wav', with_nan, RATE, subtype='FLOAT')
  (root / 'notes.txt').write_text('not audio')
  (root / 'metadata.csv').write_text(  # As a spreadsheet exports it: with a BOM.
      'file,speaker,text\n'
      'alice/a1.wav,nobody,overridden by line 5\n'
      'alice/a2.flac,alice,"second, with comma"\n'
      'alice/missing.wav,alice,gone\n'
      'alice/a1.wav,alice,hello world\n'
      'bob/b_48k.wav,bob,"a quote never closed\n'
      'bob/stereo.ogg,bob,after the bad quote\n', encoding='utf-8-sig')


def _data_config(wav_dir, data_dir, **overrides):
  config = default.get_config().data
  config.wav_dir = str(wav_dir)
  config.data_dir = str(data_dir)
  config.sample_rate = RATE
  config.validation_fraction = 0.3
  config.mel.update(n_mels=16, hop_length=64, n_fft=256, fmax=RATE / 2)
  config.update(overrides)
  return config


@pytest.fixture(scope='module')
def bad_folder(tmp_path_factory):
  root = tmp_path_factory.mktemp('bad_folder')
  _write_bad_folder(root / 'wavs')
  config = _data_config(root / 'wavs', root / 'tfds')
  source = datasets.audio_source(config)
  source.prepare()
  return config, source


def test_folder_counts_splits_and_speakers(bad_folder):
  config, source = bad_folder
  split_of = audio_folder.assign_splits(list(GOOD_FILES), config.validation_fraction)
  expected_validation = {f for f in GOOD_FILES if split_of[f] == 'validation'}
  assert 0 < len(expected_validation) < len(GOOD_FILES)
  validation = source.data_source('validation')
  train = source.data_source('train')
  assert len(train) + len(validation) == len(GOOD_FILES)
  assert {validation[i]['file'].decode() for i in range(len(validation))} == expected_validation
  # Speakers: from metadata.csv, else the folder name (the wav_dir's name at the top).
  assert source.speakers == ('alice', 'bob', 'wavs')
  examples = {train[i]['file'].decode(): train[i] for i in range(len(train))}
  examples.update({validation[i]['file'].decode(): validation[i] for i in range(len(validation))})
  assert examples['alice/a2.flac']['text'].decode() == 'second, with comma'
  # metadata.csv: the last of two rows for a1; the row after an unclosed quote is read.
  assert examples['alice/a1.wav']['text'].decode() == 'hello world'
  assert examples['bob/stereo.ogg']['text'].decode() == 'after the bad quote'
  assert examples['bob/b_48k.wav']['text'].decode() == ''
  assert source.speakers[examples['top.wav']['speaker']] == 'wavs'
  # Fixed on the way in: resampled, mixed down, clipped; a truncated file keeps its decodable part.
  assert examples['bob/b_48k.wav']['audio'].shape == (int(0.25 * RATE),)
  assert examples['bob/stereo.ogg']['audio'].ndim == 1
  assert examples['bob/loud.wav']['audio'].dtype == np.int16
  assert np.abs(examples['bob/loud.wav']['audio']).max() == 32767
  assert 0 < len(examples['bob/truncated.wav']['audio']) < int(0.5 * RATE)


def test_folder_report_lists_every_skipped_file_with_its_reason(bad_folder):
  config, source = bad_folder
  metadata = source.builder.info.metadata
  assert set(metadata['skipped']) | set(metadata['missing']) == set(SKIPPED_FILES)
  summary = audio_folder.skipped_summary(metadata)
  assert summary.startswith(f'Skipped {len(SKIPPED_FILES)} file(s)')
  for path, reason in SKIPPED_FILES.items():
    assert f'{path} (' in summary
    assert reason in summary.split(f'{path} (')[1].split(');')[0]
  assert metadata['clipped'] == ['bob/loud.wav']
  assert metadata['ignored'] == ['notes.txt']
  assert metadata['problems'] == list(METADATA_PROBLEMS)
  report = '\n'.join(source.describe())
  assert f'audio files found: {len(GOOD_FILES) + len(SKIPPED_FILES) - 1}' in report
  assert 'speakers (3): alice, bob, wavs' in report
  assert f'skipped: {len(SKIPPED_FILES)}' in report
  assert 'notes.txt' in report
  assert (f'2 problem(s) in {config.wav_dir}/metadata.csv: ' + '; '.join(METADATA_PROBLEMS)
          in report)


def test_prepare_warns_about_skipped_files_and_metadata_problems(bad_folder, caplog):
  config, _ = bad_folder
  with caplog.at_level('WARNING'):
    datasets.audio_source(config).prepare()
  assert f'Skipped {len(SKIPPED_FILES)} file(s)' in caplog.text
  assert '; '.join(METADATA_PROBLEMS) in caplog.text


def test_a_changed_metadata_csv_is_prepared_again(tmp_path):
  soundfile.write(tmp_path / 'a.wav', _tone(0.1), RATE, subtype='PCM_16')
  soundfile.write(tmp_path / 'b.wav', _tone(0.1), RATE, subtype='PCM_16')
  names = []
  for metadata in ('file,speaker\na.wav,x\n', 'file,speaker\na.wav,y\n',
                   'file,speaker\na.wav,y\ngone.wav,y\n', 'file,speaker\na.wav,y\na.wav,y\n',
                   'file,speaker\na.wav,y\nb.wav,"y\n'):
    (tmp_path / 'metadata.csv').write_text(metadata)
    names.append(audio_folder.folder_config(str(tmp_path), RATE, 0.0).name)
  assert len(set(names)) == len(names), names


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_prepared(tmp_path):
  (tmp_path / 'wavs').mkdir()
  soundfile.write(tmp_path / 'wavs' / 'good.wav', _tone(0.2), RATE, subtype='PCM_16')
  bad_name = os.path.join(os.fsencode(tmp_path / 'wavs'), b'bad\xff.wav')
  try:  # Linux file systems take any bytes; macOS's refuse names that are not UTF-8.
    with open(bad_name, 'wb') as f:
      f.write((tmp_path / 'wavs' / 'good.wav').read_bytes())
  except OSError:
    pytest.skip('this file system refuses names that are not UTF-8')
  (tmp_path / 'wavs' / os.fsdecode(b'notes\xff.txt')).write_text('not audio')
  source = datasets.audio_source(_data_config(tmp_path / 'wavs', tmp_path / 'tfds',
                                              validation_fraction=0.0))
  source.prepare()
  metadata = source.builder.info.metadata
  assert metadata['undecodable'] == ["b'bad\\xff.wav'"]
  assert metadata['ignored'] == ["b'notes\\xff.txt'"]
  assert [example['file'] for example in source.data_source('train')] == [b'good.wav']
  report = '\n'.join(source.describe())
  report.encode('utf-8')  # Printable: the names are shown as their bytes.
  assert 'audio files found: 2' in report and 'skipped: 1' in report
  assert "b'bad\\xff.wav' (the file name is not valid UTF-8: rename the file)" in report
  os.remove(tmp_path / 'wavs' / 'good.wav')
  with pytest.raises(ValueError, match=r"--wav_dir=.* holds no .* file whose name is valid "
                                       r"UTF-8 \(b'bad\\xff.wav'\)"):
    datasets.audio_source(_data_config(tmp_path / 'wavs', tmp_path / 'tfds'), flag_prefix='--')


def test_prepare_is_idempotent_and_settings_do_not_collide(bad_folder):
  config, source = bad_folder
  again = datasets.audio_source(config)
  assert again.builder.data_path == source.builder.data_path
  written = {p: os.stat(p).st_mtime_ns for p in source.builder.data_path.iterdir()}
  again.prepare()
  assert {p: os.stat(p).st_mtime_ns for p in again.builder.data_path.iterdir()} == written
  other_rate = datasets.audio_source(_data_config(config.wav_dir, config.data_dir,
                                                  sample_rate=2 * RATE))
  other_split = datasets.audio_source(_data_config(config.wav_dir, config.data_dir,
                                                   validation_fraction=0.5))
  paths = {source.builder.data_path, other_rate.builder.data_path, other_split.builder.data_path}
  assert len(paths) == 3


def test_a_folder_prepared_in_the_old_format_is_prepared_again_with_a_note(tmp_path, caplog,
                                                                          monkeypatch):
  (tmp_path / 'wavs').mkdir()
  soundfile.write(tmp_path / 'wavs' / 'a.wav', _tone(0.2), RATE, subtype='PCM_16')
  config = _data_config(tmp_path / 'wavs', tmp_path / 'tfds', validation_fraction=0.0)
  with monkeypatch.context() as patch:  # Version 1.0.0 stored 'audio' as a tfds Audio feature.
    patch.setattr(audio_folder.AudioFolder, 'VERSION', tfds.core.Version('1.0.0'))
    datasets.audio_source(config).prepare()
  source = datasets.audio_source(config)
  with caplog.at_level('WARNING'):
    source.prepare()
  old = pathlib.Path(source.builder.data_dir).parent / '1.0.0'
  assert f'{old.parent} holds version 1.0.0' in caplog.text and 'Delete the old folder' in caplog.text
  assert old.is_dir() and pathlib.Path(source.builder.data_dir).name == '3.0.0'
  assert source.builder.info.metadata['sample_rate'] == RATE
  (example,) = source.data_source('train')
  assert example['audio'].dtype == np.int16 and len(example['audio']) == int(0.2 * RATE)


def test_bad_folder_settings_raise_errors_naming_the_flag(tmp_path):
  with pytest.raises(ValueError, match='config.data.wav_dir'):
    datasets.audio_source(_data_config(tmp_path / 'nowhere', tmp_path / 'tfds'))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(ValueError, match='holds no'):
    datasets.audio_source(_data_config(tmp_path / 'empty', tmp_path / 'tfds'))
  with pytest.raises(ValueError, match='config.data.name'):
    datasets.audio_source(_data_config(tmp_path, tmp_path, name='no_such_dataset'))
  # The prepare CLI names its own flags.
  with pytest.raises(ValueError, match='^--wav_dir=.* is not a folder'):
    datasets.audio_source(_data_config(tmp_path / 'nowhere', tmp_path / 'tfds'),
                          flag_prefix='--')
  with pytest.raises(ValueError, match='^--validation_fraction=1.5 must be'):
    datasets.audio_source(_data_config(tmp_path, tmp_path, validation_fraction=1.5),
                          flag_prefix='--')


@pytest.mark.slow
def test_prepare_cli_prints_the_report(bad_folder):
  config, _ = bad_folder
  completed = subprocess.run(
      [sys.executable, '-m', 'wavenet_jax.datasets.prepare', f'--wav_dir={config.wav_dir}',
       f'--data_dir={config.data_dir}', f'--sample_rate={RATE}',
       f'--validation_fraction={config.validation_fraction}'],
      cwd=REPO, capture_output=True, text=True, check=True)
  assert 'speakers (3): alice, bob, wavs' in completed.stdout
  assert f'Skipped {len(SKIPPED_FILES)} file(s)' in completed.stdout
  failed = subprocess.run(
      [sys.executable, '-m', 'wavenet_jax.datasets.prepare', '--wav_dir=/no/such/folder'],
      cwd=REPO, capture_output=True, text=True)
  assert failed.returncode != 0
  assert "--wav_dir='/no/such/folder' is not a folder" in failed.stderr
  assert 'Traceback' not in failed.stderr


@pytest.mark.slow
def test_prepare_cli_prepares_a_configs_data_and_refuses_folder_flags_beside_it(tmp_path):
  """--config prepares config.data as training does: here with features from .npy files."""
  wav_dir = tmp_path / 'wavs'
  wav_dir.mkdir()
  for stem, frames in (('fits', 5), ('short', 2)):
    soundfile.write(wav_dir / f'{stem}.wav', np.zeros(5 * 80, np.float32), RATE)
    np.save(wav_dir / f'{stem}.npy', np.zeros((frames, 3), np.float32))
  command = [sys.executable, '-m', 'wavenet_jax.datasets.prepare',
             '--config=experiments/tiny.py', f'--config.data.wav_dir={wav_dir}',
             f'--config.data.data_dir={tmp_path / "data"}', f'--config.data.sample_rate={RATE}',
             "--config.data.features.source=files", '--config.data.features.channels=3',
             '--config.data.features.hop_length=80']
  completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
  assert completed.returncode == 0, completed.stderr[-2000:]
  assert 'short.wav' in completed.stdout and '2 frames' in completed.stdout
  assert 'examples/s' not in completed.stderr  # No progress bar redrawn into a pipe.
  failed = subprocess.run(command + ['--wav_dir=elsewhere'], cwd=REPO, capture_output=True,
                          text=True)
  assert failed.returncode == 1 and 'Traceback' not in failed.stderr
  assert '--wav_dir with --config: set it as --config.data.wav_dir=...' in failed.stderr


def test_unreadable_metadata_raises_an_error_naming_it(tmp_path):
  soundfile.write(tmp_path / 'a.wav', _tone(0.1), RATE, subtype='PCM_16')
  (tmp_path / 'metadata.csv').write_bytes(b'name,speaker\na.wav,x\n')
  with pytest.raises(ValueError, match='metadata.csv: needs a header with a "file" column'):
    file_listing.scan_folder(str(tmp_path))
  (tmp_path / 'metadata.csv').write_bytes(b'file,speaker\n\xff\xfe.wav,x\n')
  with pytest.raises(ValueError, match='metadata.csv: not a UTF-8 CSV file'):
    file_listing.scan_folder(str(tmp_path))


def test_embedded_corpus_is_the_default():
  listing = file_listing.scan_folder(str(datasets.EMBEDDED_CORPUS_DIR))
  assert {entry.speaker for entry in listing.entries} == {'slt', 'awb'}
  assert all(entry.text for entry in listing.entries)
  assert not listing.missing and not listing.ignored and not listing.unlisted
  splits = list(audio_folder.assign_splits([entry.file for entry in listing.entries],
                                           default.get_config().data.validation_fraction).values())
  assert splits.count('validation') >= 1 and splits.count('train') >= 40
  total_bytes = sum(p.stat().st_size for p in datasets.EMBEDDED_CORPUS_DIR.rglob('*'))
  assert total_bytes < 8 * 2**20


def test_split_by_hash_is_deterministic_and_near_the_fraction():
  names = [f'speaker/{i:04d}.wav' for i in range(2000)]
  split_of = audio_folder.assign_splits(names, 0.1)
  assert split_of == audio_folder.assign_splits(names[::-1], 0.1)
  assert 150 < list(split_of.values()).count('validation') < 250
  # A file's split does not depend on the other files.
  assert audio_folder.assign_splits(names[:1000], 0.1) == {n: split_of[n] for n in names[:1000]}
  # At least one validation file when there are two or more, none with fraction 0.
  assert 'validation' in audio_folder.assign_splits(names[:2], 1e-9).values()
  assert set(audio_folder.assign_splits(names, 0.0).values()) == {'train'}


def test_no_usable_file_is_an_error_listing_every_file(tmp_path):
  (tmp_path / 'wavs').mkdir()
  (tmp_path / 'wavs' / 'a.wav').write_text('not audio')
  (tmp_path / 'wavs' / 'b.flac').write_bytes(b'')
  source = datasets.audio_source(_data_config(tmp_path / 'wavs', tmp_path / 'tfds'))
  with pytest.raises(ValueError, match=r'No usable audio file .* a.wav \(cannot decode.* b.flac'):
    source.prepare()


@pytest.mark.parametrize('name', sorted(catalog.CATALOG))
@pytest.mark.slow
def test_catalog_dataset_batches_with_mock_data(name, tmp_path):
  pytest.importorskip('tensorflow', reason='catalog datasets need the tensorflow extra')
  config = _data_config('', tmp_path, name=name, sample_rate=16000, validation_fraction=0.2)
  config.mel.update(fmax=8000.0)
  entry = catalog.CATALOG[name]
  with tfds.testing.mock_data(num_examples=5, policy=tfds.testing.MockPolicy.USE_CODE):
    source = datasets.audio_source(config)
    assert source.builder.info.features[entry.audio_key].sample_rate == entry.sample_rate
    dataset = input_pipeline.prepare_dataset(config)
    info = dataset.info
    if entry.speaker_key is None:
      assert info.speakers == (name,)
    else:
      assert len(info.speakers) > 1
    assert info.mel_mean.shape == (config.mel.n_mels,)
    batches = dataset.train_batches(receptive_field=64, global_batch_size=2, seed=0,
                                    with_speaker=True, with_mel=True)
    batch = next(batches)
    eval_batch = next(iter(dataset.eval_batches(receptive_field=64, global_batch_size=2,
                                                num_batches=1, with_speaker=True)))
  assert eval_batch['audio'].shape == (2, 64 + config.segment_length)
  length = 64 + config.segment_length
  assert batch['audio'].shape == (2, length) and batch['audio'].dtype == np.int32
  assert batch['mel'].shape == (2, -(-length // config.mel.hop_length), config.mel.n_mels)
  assert np.all((batch['audio'] >= 0) & (batch['audio'] < mulaw.NUM_CLASSES))
  assert np.all(batch['speaker'] < len(info.speakers))
