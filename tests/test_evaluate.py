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

import training_runs
from wavenet_jax import audio as audio_lib
from wavenet_jax import evaluation
from wavenet_jax import trainer
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


@pytest.mark.parametrize('hop, speaker, local', [(1, False, False), (4, True, True)])
def test_chunked_scores_equal_one_forward_pass(hop, speaker, local):
  model = WaveNet(num_layers=4, num_stacks=1, residual_channels=8, gate_channels=8,
                  skip_channels=8, num_classes=256, num_speakers=3 if speaker else 0,
                  local_cond_channels=2 if local else 0, hop_length=hop,
                  upsample_method='repeat')
  classes = np.asarray(jax.random.randint(jax.random.key(0), (103,), 0, 256), np.int32)
  mel = np.asarray(jax.random.normal(jax.random.key(1), (26, 2))) if local else None
  global_cond = jnp.asarray([2]) if speaker else None
  local_cond = None if mel is None else jnp.asarray(mel[None])
  variables = model.init(jax.random.key(2), jnp.asarray(classes[None]), global_cond, local_cond)
  logits = model.apply(variables, jnp.asarray(classes[None]), global_cond, local_cond)
  expected = float(optax.softmax_cross_entropy_with_integer_labels(
      logits[0, :-1], jnp.asarray(classes[1:])).sum())
  chunked = evaluation.score_classes(model, variables, classes, 2 if speaker else None, mel,
                                     chunk_length=10)
  assert chunked == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_evaluate_cli_scores_a_folder_with_speakers_and_mel(tmp_path):
  workdir = str(tmp_path / 'run')
  config = training_runs.tiny_config({'train.num_steps': 2, 'model.global_conditioning': True,
                                      'model.local_conditioning': True})
  trainer.train_and_evaluate(config, workdir)
  folder = _small_folder(tmp_path / 'wavs')
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdir={workdir}', f'--wav_dir={folder}'],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  score = json.loads(result.stdout.strip().splitlines()[-1])
  lengths = [len(audio_lib.load_audio(folder / name, 16000))
             for name in os.listdir(folder) if name.endswith('.flac')]
  assert score['num_files'] == 2 and score['num_samples'] == sum(lengths) - 2
  assert 0.0 < score['bits_per_sample'] < 10.0

  first_file = sorted(name for name in os.listdir(folder) if name.endswith('.flac'))[0]
  (folder / 'metadata.csv').write_text(f'file,speaker\n{first_file},nobody\n')
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdir={workdir}', f'--wav_dir={folder}'],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=300)
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert "speaker 'nobody'" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_evaluate_cli_without_checkpoint_is_a_one_line_error(tmp_path):
  result = subprocess.run(
      [sys.executable, 'evaluate.py', f'--workdir={tmp_path}', f'--wav_dir={tmp_path}'],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=120)
  assert result.returncode != 0 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith('evaluate.py: error:')
