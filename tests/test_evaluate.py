"""evaluate.py and wavenet_jax/evaluation.py: whole-file teacher-forced scoring."""
import json
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import soundfile

import training_runs
from wavenet_jax import audio as audio_lib
from wavenet_jax import evaluation
from wavenet_jax import file_listing
from wavenet_jax import trainer
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax.datasets import EMBEDDED_CORPUS_DIR
from wavenet_jax.models import WaveNet


def _small_folder(path, speakers=('awb', 'slt'), per_speaker=1):
  """Copies a few embedded-corpus files and their metadata.csv rows (speaker by name)."""
  path.mkdir()
  rows = ['file,speaker']
  for speaker in speakers:
    for name in sorted(os.listdir(EMBEDDED_CORPUS_DIR / speaker))[:per_speaker]:
      shutil.copy(EMBEDDED_CORPUS_DIR / speaker / name, path / name)
      rows.append(f'{name},{speaker}')
  (path / 'metadata.csv').write_text('\n'.join(rows) + '\n')
  return path


@pytest.mark.parametrize('hop, speaker, local, output', [
    (1, False, False, 'mulaw_softmax'), (4, True, True, 'mulaw_softmax'),
    (1, False, False, 'mixture_of_logistics'), (4, True, True, 'mixture_of_logistics')])
def test_chunked_scores_equal_one_forward_pass(hop, speaker, local, output):
  model = WaveNet(num_layers=4, num_stacks=1, residual_channels=8, gate_channels=8,
                  skip_channels=8, num_speakers=3 if speaker else 0,
                  local_cond_channels=2 if local else 0, hop_length=hop,
                  upsample_method='repeat', output=output, num_mixtures=2)
  classes = np.asarray(jax.random.randint(jax.random.key(0), (103,), 0, model.num_classes),
                       np.int32)
  mel = np.asarray(jax.random.normal(jax.random.key(1), (26, 2))) if local else None
  global_cond = jnp.asarray([2]) if speaker else None
  local_cond = None if mel is None else jnp.asarray(mel[None])
  variables = model.init(jax.random.key(2), jnp.asarray(classes[None]), global_cond, local_cond)
  logits = model.apply(variables, jnp.asarray(classes[None]), global_cond, local_cond)
  targets = jnp.asarray(classes[1:])
  head = model.distribution
  expected = [-float(log_prob(logits[0, :-1], targets).sum())
              for log_prob in (head.log_prob, head.mulaw_log_prob)]
  if output == 'mulaw_softmax':
    assert expected[0] == pytest.approx(float(optax.softmax_cross_entropy_with_integer_labels(
        logits[0, :-1], targets).sum()), rel=1e-6)
  else:  # A 16-bit class is one of the PCM bins of its μ-law class: less probable.
    assert expected[0] > expected[1]
  chunked = evaluation.score_classes(model, variables, classes, 2 if speaker else None, mel,
                                     chunk_length=10)
  assert chunked == pytest.approx(expected, rel=1e-5)


def test_score_folder_skips_and_lists_the_files_it_cannot_score(tmp_path):
  rate = 8000
  model = WaveNet(num_layers=2, num_stacks=1, residual_channels=4, gate_channels=4,
                  skip_channels=4, num_classes=256, num_speakers=2)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32), jnp.asarray([0]), None)
  info = DatasetInfo(sample_rate=rate, speakers=('ann', 'bob'), mel_mean=None, mel_std=None,
                     num_train_examples=2, num_validation_examples=0)
  rng = np.random.default_rng(0)
  good = {'ann/a.wav': (rng.uniform(-0.5, 0.5, 200), 0),
          'x/b.wav': (rng.uniform(-0.5, 0.5, 300), 1)}  # Speaker by metadata.csv, not folder.
  for folder in ('ann', 'x', 'carl'):
    (tmp_path / folder).mkdir()
  for name, (waveform, _) in good.items():
    soundfile.write(tmp_path / name, waveform, rate, subtype='FLOAT')
  soundfile.write(tmp_path / 'ann/one.wav', np.zeros(1), rate, subtype='PCM_16')
  soundfile.write(tmp_path / 'ann/nan.wav', np.asarray([0.1, np.nan, 0.2]), rate, subtype='FLOAT')
  (tmp_path / 'ann/text.wav').write_text('not audio')
  soundfile.write(tmp_path / 'carl/c.wav', np.zeros(100), rate, subtype='PCM_16')
  (tmp_path / 'metadata.csv').write_text('file,speaker\nx/b.wav,bob\ngone.wav,ann\nx/b.wav,"bob\n')
  score = evaluation.score_folder(model, variables, info, None, str(tmp_path),
                                  chunk_length=128, setting='--wav_dir')
  expected = np.sum([
      evaluation.score_waveform(model, variables, audio_lib.load_audio(tmp_path / name, rate),
                                None, speaker, chunk_length=128)
      for name, (_, speaker) in good.items()], axis=0)
  assert (score.nats, score.mulaw_nats) == pytest.approx(tuple(expected), rel=1e-6)
  assert score.num_files == 2 and score.num_samples == 199 + 299
  assert set(score.skipped) == {'ann/one.wav', 'ann/nan.wav', 'ann/text.wav', 'carl/c.wav',
                                'gone.wav'}
  assert score.skipped['ann/one.wav'] == 'needs at least 2 samples to score, has 1'
  assert 'NaN' in score.skipped['ann/nan.wav']
  assert 'cannot decode' in score.skipped['ann/text.wav']
  assert score.skipped['carl/c.wav'] == "speaker 'carl' is not one the model knows (ann, bob)"
  assert score.skipped['gone.wav'] == file_listing.MISSING_REASON
  assert score.metadata_problems == (
      'line 4: a quote is opened and never closed: the row is not used',)
  for name in good:
    os.remove(tmp_path / name)
  with pytest.raises(ValueError, match=r"^--wav_dir='.*': no file can be scored\. Skipped 6 "
                                       r"file\(s\) of .*carl/c.wav \(speaker 'carl'"):
    evaluation.score_folder(model, variables, info, None, str(tmp_path),
                            setting='--wav_dir')


@pytest.mark.slow
def test_evaluate_cli_scores_a_folder_with_speakers_and_mel(tmp_path):
  workdir = str(tmp_path / 'run')
  config = training_runs.tiny_config({'train.num_steps': 2, 'model.global_conditioning': True,
                                      'model.local_conditioning': True})
  trainer.train_and_evaluate(config, workdir)
  folder = _small_folder(tmp_path / 'wavs')
  result = training_runs.run_script('evaluate.py', f'--workdir={workdir}',
                                    f'--wav_dir={folder}')
  assert result.returncode == 0, result.stderr[-3000:]
  score = json.loads(result.stdout.strip().splitlines()[-1])
  lengths = [len(audio_lib.load_audio(folder / name, 16000))
             for name in os.listdir(folder) if name.endswith('.flac')]
  assert score['num_files'] == 2 and score['num_samples'] == sum(lengths) - 2
  assert 0.0 < score['bits_per_sample'] < 10.0
  assert score['mulaw_bits_per_sample'] == score['bits_per_sample']
  assert score['skipped'] == {} and score['metadata_problems'] == []

  # Bad files are skipped and listed; the others scored.
  first_file, second_file = sorted(name for name in os.listdir(folder) if name.endswith('.flac'))
  (folder / 'metadata.csv').write_text(
      f'file,speaker\n{first_file},nobody\n{second_file},slt\n{second_file},slt\n')
  (folder / 'text.wav').write_text('not audio')
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdir={workdir}', f'--wav_dir={folder}'],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  *_, skipped_note, problems_note, last_line = result.stdout.strip().splitlines()
  score = json.loads(last_line)
  second_length = len(audio_lib.load_audio(folder / second_file, 16000))
  assert score['num_files'] == 1 and score['num_samples'] == second_length - 1
  assert set(score['skipped']) == {first_file, 'text.wav'}
  assert "speaker 'nobody' is not one the model knows" in score['skipped'][first_file]
  assert skipped_note.startswith(f'Skipped 2 file(s) of {folder}: {first_file} (speaker')
  assert problems_note == (f'1 problem(s) in {folder}/metadata.csv: line 4: {second_file!r} is '
                           'the file of line 3 too: line 4 is used')
  assert score['metadata_problems'] == [problems_note.split(': ', 1)[1]]

  # No file left to score: a one-line error naming the flag.
  os.remove(folder / second_file)
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdir={workdir}', f'--wav_dir={folder}'],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=300)
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  error = result.stderr.strip().splitlines()[-1]
  assert error.startswith(f"evaluate.py: error: --wav_dir='{folder}': no file can be scored")
  assert "speaker 'nobody'" in error and 'text.wav (cannot decode' in error


@pytest.mark.slow
def test_evaluate_cli_without_checkpoint_is_a_one_line_error(tmp_path):
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdir={tmp_path}', f'--wav_dir={tmp_path}'],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=120)
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith('evaluate.py: error:')
