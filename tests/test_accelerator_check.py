"""experiments/benchmarks/accelerator.py end to end on this CPU, shrunk to seconds.

The check runs in a subprocess through tests/tensorflow_guard.py with TensorFlow and librosa
absent, as on an accelerator host that has only requirements-accelerator.txt's extra wheels.
"""
import json
import math
import os
import subprocess
import sys

import pytest
import soundfile

import training_runs

GUARD = os.path.join(training_runs.REPO, 'tests', 'tensorflow_guard.py')
ABSENT = ('tensorflow', 'librosa')
# A 4-layer model (receptive field 16) on 240-sample crops, tiny timing windows and clips.
CLIP_SECONDS = 0.5
SHRUNK_FLAGS = (
    '--config.model.num_layers=4', '--config.model.num_stacks=1',
    '--config.model.residual_channels=8', '--config.model.gate_channels=16',
    '--config.model.skip_channels=16', '--config.data.segment_length=240',
    '--config.data.mel.n_mels=8', '--config.data.read_threads=1', '--config.train.batch_size=2',
    '--config.eval.num_batches=1', '--train_seconds=4', '--step_batch_size=2',
    '--step_segment_length=240', '--generation_batch_sizes=1,4', '--window_seconds=0.2',
    '--windows=2', f'--clip_seconds={CLIP_SECONDS}', '--matmul_size=1024',
)


def _run_check(*flags: str) -> subprocess.CompletedProcess:
  """The finished check (ABSENT packages not importable), its output captured."""
  return subprocess.run(
      [sys.executable, GUARD, f'--absent={",".join(ABSENT)}', '-m',
       'experiments.benchmarks.accelerator', *flags],
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=300)


def _assert_positive(value: float) -> None:
  assert math.isfinite(value) and value > 0, value


@pytest.mark.slow
def test_check_measures_trains_writes_clips_and_summary_without_tensorflow(tmp_path):
  output_dir = tmp_path / 'check'
  result = _run_check(f'--output_dir={output_dir}', *SHRUNK_FLAGS)
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads(result.stdout.splitlines()[-1])
  assert json.loads((output_dir / 'summary.json').read_text()) == summary
  assert summary['devices'] == {'platform': 'cpu', 'kind': 'cpu', 'count': 1}
  assert {'python', 'jax', 'jaxlib', 'flax'} <= set(summary['versions'])
  assert summary['float32_matmul'] == {'jax_default_matmul_precision': None,
                                       'arithmetic': 'float32'}
  _assert_positive(summary['wall_seconds'])

  step = summary['train_step']
  assert step['batch_per_device'] == 2 and step['samples_per_sequence'] == 16 + 240
  for dtype in ('float32', 'bfloat16'):
    figures = step[dtype]
    assert figures['dtype'] == dtype
    for key in ('samples_per_s_per_device', 'step_ms', 'compile_s', 'model_tflops_per_device',
                'peak_tflops'):
      _assert_positive(figures[key])
    assert 0 < figures['mfu'] <= 1
    assert figures['peak_source'].startswith(f'measured: best [1024, 1024] {dtype} matmul')

  training = summary['training']
  assert training['dtype'] == 'bfloat16' and training['train_seconds'] == 4
  assert training['steps'] >= 1
  _assert_positive(training['last_logged_samples_per_s'])
  _assert_positive(training['validation_bits_per_sample'])
  assert os.listdir(output_dir / 'run' / 'checkpoints') == [str(training['steps'])]
  assert (output_dir / 'tensorflow_datasets' / 'audio_folder').is_dir()

  clips = summary['clips']
  assert clips['dtype'] == 'bfloat16' and clips['sample_rate'] == 16000
  assert set(clips['files']) == {'speaker_awb', 'speaker_slt'}
  for name, files in clips['files'].items():
    assert files == {'wav': str(output_dir / f'{name}.wav'), 'png': str(output_dir / f'{name}.png')}
    waveform, rate = soundfile.read(files['wav'])
    assert rate == 16000 and waveform.shape == (round(CLIP_SECONDS * rate),)
    with open(files['png'], 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'

  generation = summary['generation']
  assert set(generation) == {'dtype', 'batch_1', 'batch_4'}
  assert generation['dtype'] == 'bfloat16'
  for batch_size in (1, 4):
    figures = generation[f'batch_{batch_size}']
    assert figures['devices'] == 1
    _assert_positive(figures['samples_per_s'])
    assert figures['samples_per_s_per_device'] == figures['samples_per_s']
    assert figures['range'][0] <= figures['samples_per_s'] <= figures['range'][1]
  # Off a GPU the Pallas kernel runs in interpret mode: no figure is reported as a speed.
  assert summary['pallas_generation'] == {
      'skipped': 'on cpu the Pallas kernel runs in interpret mode, whose timing is not a speed'}


@pytest.mark.slow
@pytest.mark.parametrize('flag, message', [
    ('--train_seconds=-1', '--train_seconds must be > 0, got -1.0.'),
    ('--windows=0', '--windows must be >= 1, got 0.'),
    ('--generation_batch_sizes=', "--generation_batch_sizes must list batch sizes >= 1, got ''."),
    ('--config.model.num_layerz=3', '--config: no config key \'num_layerz\' (Did you mean '
     '"num_layers" instead of "num_layerz"?)'),
    ('--config.model.local_conditioning=True', '--config: the check generates without mel '
     'features; config.model.local_conditioning must be False.'),
])
def test_bad_flag_is_a_one_line_error_before_any_work(tmp_path, flag, message):
  output_dir = tmp_path / 'check'
  result = _run_check(f'--output_dir={output_dir}', flag)
  assert result.returncode == 1
  assert result.stderr.strip() == f'accelerator.py: error: {message}'
  assert not output_dir.exists()


@pytest.mark.slow
def test_unwritable_or_used_output_dir_is_a_one_line_error(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  result = _run_check(f'--output_dir={blocker / "check"}')
  assert result.returncode == 1
  assert '\n' not in result.stderr.strip()
  assert result.stderr.startswith(
      f'accelerator.py: error: --output_dir={blocker / "check"} is not writable (')
  used = tmp_path / 'used'
  (used / 'run' / 'checkpoints').mkdir(parents=True)
  result = _run_check(f'--output_dir={used}')
  assert result.returncode == 1
  assert result.stderr.strip() == (
      f'accelerator.py: error: --output_dir={used} already holds a training run '
      f'({used / "run"}): remove it or choose another folder.')
