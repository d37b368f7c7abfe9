"""Whole-run tests of wavenet_jax/trainer.py and train.py with minute-sized configs."""
import glob
import io
import os
import subprocess
import sys
import time

import flax.linen as nn
import jax
import numpy as np
import pytest
import soundfile
from flax import traverse_util

import training_runs
from wavenet_jax import checkpointing
from wavenet_jax import optimizers
from wavenet_jax import run_control
from wavenet_jax import summaries
from wavenet_jax import trainer


def test_learning_rate_warms_up_then_decays():
  config = training_runs.tiny_config({'train.num_steps': 110, 'train.warmup_steps': 10,
                                      'train.learning_rate': 1.0})
  learning_rate = optimizers.create_learning_rate_fn(config.train)
  assert [float(learning_rate(step)) for step in (0, 5, 10)] == pytest.approx([0.0, 0.5, 1.0])
  assert float(learning_rate(60)) == pytest.approx(0.5, abs=1e-6)  # Half-way down the cosine.
  assert float(learning_rate(110)) == pytest.approx(0.0, abs=1e-6)
  config.train.decay = 'linear'
  with pytest.raises(ValueError, match='config.train.decay'):
    optimizers.create_learning_rate_fn(config.train)


def _summaries(workdir):
  """The run's summaries as TensorBoard reads them (its plugins' view of the event files)."""
  from tensorboard.backend.event_processing import plugin_event_accumulator
  events = plugin_event_accumulator.EventAccumulator(workdir, size_guidance={'tensors': 0})
  events.Reload()
  return events


def _scalar_values(events, tag):
  from tensorboard.util import tensor_util
  return [(event.step, float(tensor_util.make_ndarray(event.tensor_proto)))
          for event in events.Tensors(tag)]


@pytest.mark.slow
def test_unconditional_run_writes_checkpoints_metrics_eval_and_clip(tmp_path):
  workdir = str(tmp_path)
  config = training_runs.tiny_config({'eval.every_steps': 2, 'sample.every_steps': 4,
                                      'train.ema_decay': 0.5})
  state = trainer.train_and_evaluate(config, workdir)
  assert int(state.step) == 4
  assert sorted(os.listdir(os.path.join(workdir, 'checkpoints'))) == ['2', '4']
  # The EMA, not the raw parameters, is what inference loads.
  trained = checkpointing.restore_for_inference(workdir)
  info, model, variables = trained.dataset_info, trained.model, trained.variables
  assert trained.step == 4
  assert model.num_speakers == 0 and model.local_cond_channels == 0
  jax.tree.map(np.testing.assert_allclose, variables['params'],
               jax.device_get(state.ema_params))
  assert not np.allclose(variables['params']['head_out']['kernel'],
                         state.params['head_out']['kernel'])
  clip, rate = soundfile.read(os.path.join(workdir, 'samples', 'step_00000004.wav'))
  assert rate == info.sample_rate and clip.shape == (int(0.01 * rate),)
  events = _summaries(workdir)
  assert set(events.PluginTagToContent('scalars')) == {
      'train/loss', 'train/bits_per_sample', 'train/grad_norm', 'train/learning_rate',
      'train/samples_per_s', 'train/steps_per_s', 'eval/bits_per_sample',
      'eval/mulaw_bits_per_sample'}
  assert [step for step, _ in _scalar_values(events, 'eval/bits_per_sample')] == [2, 4]
  # A softmax model's classes are μ-law classes: the two units agree.
  assert (_scalar_values(events, 'eval/mulaw_bits_per_sample')
          == _scalar_values(events, 'eval/bits_per_sample'))
  # What experiments/tools/report.py reads back.
  scalars = summaries.read_scalars(workdir)
  assert [(step, value) for _, step, value in scalars['eval/bits_per_sample']] == (
      _scalar_values(events, 'eval/bits_per_sample'))
  assert [step for _, step, _ in scalars['train/loss']] == [1, 2, 3, 4]
  losses = _scalar_values(events, 'train/loss')
  bits = _scalar_values(events, 'train/bits_per_sample')
  assert [step for step, _ in losses] == [1, 2, 3, 4]
  np.testing.assert_allclose([b for _, b in bits], [l / np.log(2) for _, l in losses], rtol=1e-6)
  # The clip, as TensorBoard's audio plugin reads it: the WAV file's bytes.
  assert set(events.PluginTagToContent('audio')) == {'generated'}
  (event,) = events.Tensors('generated')
  from tensorboard.util import tensor_util
  wav_bytes = tensor_util.make_ndarray(event.tensor_proto).flat[0]
  tensorboard_clip, tensorboard_rate = soundfile.read(io.BytesIO(wav_bytes))
  assert event.step == 4 and tensorboard_rate == info.sample_rate
  np.testing.assert_allclose(tensorboard_clip, clip, atol=1 / 32768)


@pytest.mark.slow
@pytest.mark.parametrize('conditioning, param', [('global_conditioning', 'speaker_embedding'),
                                                 ('local_conditioning', 'upsampler')])
def test_conditioned_run(tmp_path, conditioning, param):
  config = training_runs.tiny_config({'train.num_steps': 2, 'sample.every_steps': 2,
                                      f'model.{conditioning}': True})
  state = trainer.train_and_evaluate(config, str(tmp_path))
  assert os.path.exists(os.path.join(str(tmp_path), 'samples', 'step_00000002.wav'))
  names = traverse_util.flatten_dict(state.params, sep='/')
  assert any(name.startswith(param) for name in names), sorted(names)
  assert_params_changed(config, state, str(tmp_path), prefixes=(param, 'layer_0/global_proj',
                                                 'layer_0/local_proj'))


def assert_params_changed(config, state, workdir, prefixes=('',)):
  """Some parameter whose name starts with one of `prefixes` differs from its initial value."""
  model = checkpointing.restore_for_inference(workdir).model
  initial = trainer.init_train_state(jax.random.key(config.seed), model,
                                     optimizers.create_optimizer(config.train), False)
  initial = traverse_util.flatten_dict(nn.unbox(initial.params), sep='/')
  trained = traverse_util.flatten_dict(jax.device_get(state.params), sep='/')
  assert any(not np.allclose(trained[name], initial[name]) for name in trained
             if name.startswith(prefixes))


def test_nan_loss_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path):
  # The first update has learning rate 0 (warmup), the second a huge one.
  workdir = str(tmp_path)
  config = training_runs.tiny_config({'train.num_steps': 6, 'train.learning_rate': 1e38,
                                      'train.grad_clip_norm': 1e38, 'checkpoint.every_steps': 1})
  with pytest.raises(run_control.TrainingDivergedError, match='diverged at step'):
    trainer.train_and_evaluate(config, workdir)
  steps = sorted(int(step) for step in os.listdir(os.path.join(workdir, 'checkpoints')))
  assert steps and steps[-1] < 6
  params = training_runs.checkpoint_params(workdir)
  assert all(np.isfinite(value).all() for value in params.values())


def test_a_run_that_fails_after_it_wrote_something_keeps_its_workdir(tmp_path):
  workdir = str(tmp_path / 'new')
  config = training_runs.tiny_config({'train.num_steps': 6, 'train.learning_rate': 1e38,
                                      'train.grad_clip_norm': 1e38, 'checkpoint.every_steps': 100})
  with pytest.raises(run_control.TrainingDivergedError):
    trainer.train_and_evaluate(config, workdir)
  assert glob.glob(os.path.join(workdir, 'events.out.tfevents.*'))  # Its summaries are kept.


@pytest.mark.slow
def test_eight_devices_give_the_same_params_as_one(tmp_path):
  overrides = {'train.num_steps': 1, 'train.batch_size': 8, 'checkpoint.every_steps': 1,
               'train.warmup_steps': 0}
  one_device = str(tmp_path / 'one')
  config = training_runs.tiny_config(overrides)
  state = trainer.train_and_evaluate(config, one_device)
  assert_params_changed(config, state, one_device)
  eight_devices = str(tmp_path / 'eight')
  result = training_runs.run_train(
      eight_devices, env=training_runs.run_env(
          XLA_FLAGS='--xla_force_host_platform_device_count=8'), overrides=overrides)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "'data': 8" in result.stderr
  training_runs.assert_params_close(training_runs.checkpoint_params(eight_devices),
                                    training_runs.checkpoint_params(one_device))


@pytest.mark.slow
def test_config_typo_is_a_one_line_error(tmp_path):
  result = subprocess.run(
      training_runs.train_command(str(tmp_path), '--config.train.batch_sizee=8'),
      cwd=training_runs.REPO, env=training_runs.run_env(), capture_output=True, text=True,
      timeout=120)
  assert result.returncode != 0
  assert 'Traceback' not in result.stderr
  assert 'batch_sizee' in result.stderr.strip().splitlines()[-1]
  assert not glob.glob(os.path.join(str(tmp_path), 'checkpoints', '*'))


def test_zero_intervals_disable_eval_and_clips(tmp_path):
  config = training_runs.tiny_config({'train.num_steps': 2, 'eval.every_steps': 0,
                                      'sample.every_steps': 0})
  state = trainer.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 2
  assert not os.path.exists(os.path.join(str(tmp_path), 'samples'))
  assert 'eval/bits_per_sample' not in _summaries(str(tmp_path)).PluginTagToContent('scalars')


@pytest.mark.slow
def test_max_seconds_stops_with_a_checkpoint_and_a_final_evaluation(tmp_path):
  workdir = str(tmp_path)
  config = training_runs.tiny_config({'train.num_steps': 100_000, 'train.max_seconds': 2.0,
                                      'eval.every_steps': 100_000,
                                      'checkpoint.every_steps': 100_000})
  state = trainer.train_and_evaluate(config, workdir)
  step = int(state.step)
  assert 0 < step < 100_000
  assert os.listdir(os.path.join(workdir, 'checkpoints')) == [str(step)]
  assert [s for s, _ in _scalar_values(_summaries(workdir), 'eval/bits_per_sample')] == [step]
  # A relaunch gets max_seconds again and resumes where the first stopped.
  assert int(trainer.train_and_evaluate(config, workdir).step) > step


def test_bad_embedding_init_is_a_config_error(tmp_path):
  config = training_runs.tiny_config({'model.embedding_init': 'sinusoid'})
  with pytest.raises(ValueError, match='config.model.embedding_init must be one of'):
    trainer.train_and_evaluate(config, str(tmp_path))
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize('overrides', [
    {'data.speed_perturbation': 1.0},
    {'data.speed_perturbation': 0.1, 'model.local_conditioning': True}])
def test_bad_speed_perturbation_is_a_config_error(tmp_path, overrides):
  config = training_runs.tiny_config(overrides)
  with pytest.raises(ValueError, match='config.data.speed_perturbation must be'):
    trainer.train_and_evaluate(config, str(tmp_path))
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize('key', ['sample.every_steps', 'eval.every_steps',
                                 'train.log_every_steps', 'checkpoint.every_steps',
                                 'train.max_seconds'])
def test_bad_interval_is_a_config_error(tmp_path, key):
  config = training_runs.tiny_config({key: -1})
  with pytest.raises(ValueError, match=key):
    trainer.train_and_evaluate(config, str(tmp_path))
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_bad_command_lines_are_one_line_errors_that_leave_no_workdir(tmp_path):
  (tmp_path / 'a_file').write_text('')
  (tmp_path / 'no_get_config.py').write_text('def config():\n  return None\n')
  cases = [
      ([f'--config={tmp_path / "missing.py"}', f'--workdir={tmp_path / "w1"}'],
       "train.py: error: --config: [Errno 2] No such file or directory: "
       f"'{tmp_path / 'missing.py'}'"),
      ([f'--config={tmp_path / "no_get_config.py"}', f'--workdir={tmp_path / "w2"}'],
       "has no attribute 'get_config' (a config file defines get_config())"),
      ([f'--config={training_runs.REPO}/experiments/tiny.py', f'--workdir={tmp_path / "a_file"}'],
       f'train.py: error: --workdir={tmp_path / "a_file"} is a file, not a folder.'),
      ([f'--config={training_runs.REPO}/experiments/tiny.py', f'--workdir={tmp_path / "w3"}',
        '--config.data.segment_length=-5'],
       'train.py: error: config.data.segment_length must be >= 1, got -5.'),
      ([f'--config={training_runs.REPO}/experiments/tiny.py', f'--workdir={tmp_path / "w4"}',
        f'--config.data.wav_dir={tmp_path / "nowhere"}'],
       f"train.py: error: config.data.wav_dir='{tmp_path / 'nowhere'}' is not a folder."),
  ]
  for args, message in cases:
    result = subprocess.run([sys.executable, 'train.py', *args], cwd=training_runs.REPO,
                            env=training_runs.run_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1 and 'Traceback' not in result.stderr, result.stderr[-2000:]
    assert message in result.stderr.strip().splitlines()[-1]
  assert sorted(os.listdir(tmp_path)) == ['a_file', 'no_get_config.py']


@pytest.mark.slow
def test_max_seconds_counts_the_time_before_the_loop(tmp_path, monkeypatch):
  """A wall-clock allocation includes compiling (here made to take 3 s): one step, then stop."""
  compile_step = trainer._compile  # pylint: disable=protected-access

  def slow_compile(*args):
    time.sleep(3.0)
    return compile_step(*args)

  monkeypatch.setattr(trainer, '_compile', slow_compile)
  config = training_runs.tiny_config({'train.num_steps': 100_000, 'train.max_seconds': 2.0,
                                      'checkpoint.every_steps': 100_000})
  assert int(trainer.train_and_evaluate(config, str(tmp_path)).step) == 1
