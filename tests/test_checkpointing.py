"""Checkpoint tests: resume after SIGKILL, SIGTERM save-and-exit, retention, inference loading."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import training_runs
from wavenet_jax import checkpointing
from wavenet_jax import config_rules
from wavenet_jax import run_control
from wavenet_jax import trainer
from wavenet_jax import workdir_lock

pytestmark = pytest.mark.slow

# Constant learning rate: the killed run and the reference run then share every update even
# though they are started with different num_steps.
RESUME = {'train.decay': 'constant', 'train.warmup_steps': 0, 'checkpoint.every_steps': 2}


def _steps(workdir):
  directory = os.path.join(workdir, 'checkpoints')
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _start_and_wait_for_checkpoint(workdir, overrides):
  """Starts train.py for a long run; returns the process once checkpoint 2 is complete."""
  process = subprocess.Popen(training_runs.train_command(workdir, overrides=overrides),
                             cwd=training_runs.REPO, env=training_runs.run_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 240
  while not os.path.exists(os.path.join(workdir, 'checkpoints', '2', 'commit_success.txt')):
    assert process.poll() is None, process.stderr.read()[-3000:]
    assert time.monotonic() < deadline, 'no checkpoint after 240 s'
    time.sleep(0.02)
  return process


def test_sigkill_then_restart_reaches_the_same_params(tmp_path):
  num_steps = 12
  reference = str(tmp_path / 'reference')
  trainer.train_and_evaluate(training_runs.tiny_config({'train.num_steps': num_steps, **RESUME}),
                             reference)
  killed = str(tmp_path / 'killed')
  process = _start_and_wait_for_checkpoint(killed, {'train.num_steps': 10_000, **RESUME})
  process.send_signal(signal.SIGKILL)
  process.communicate(timeout=60)
  resumed_from = _steps(killed)[-1]
  assert 2 <= resumed_from < num_steps
  trainer.train_and_evaluate(training_runs.tiny_config({'train.num_steps': num_steps, **RESUME}),
                             killed)
  assert _steps(killed)[-1] == num_steps
  training_runs.assert_params_close(training_runs.checkpoint_params(killed),
                                    training_runs.checkpoint_params(reference))


@pytest.mark.parametrize('stop', [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_save_and_exit_with_the_resume_status(tmp_path, stop):
  workdir = str(tmp_path)
  process = _start_and_wait_for_checkpoint(workdir, {'train.num_steps': 100_000, **RESUME})
  process.send_signal(stop)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == run_control.PREEMPTED_EXIT_STATUS == 75, stderr[-3000:]
  saved = _steps(workdir)[-1]
  assert f'Preempted: saved checkpoint {saved} in' in stderr
  assert stderr.strip().splitlines()[-1] == (
      f'train.py: preempted: saved checkpoint {saved} in {os.path.join(workdir, "checkpoints")}; '
      'start the same command again to resume. (exit status 75)')
  assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr


def test_a_second_ctrl_c_exits_at_once():
  # The run's signal handler, driven directly: two Ctrl-C during one training step.
  probe = (
      'import os, signal, time\n'
      'from wavenet_jax import run_control\n'
      'stop = run_control.StopSignals()\n'
      'os.kill(os.getpid(), signal.SIGINT)\n'
      'time.sleep(0.2)\n'
      'assert stop.is_set()\n'
      'os.kill(os.getpid(), signal.SIGINT)\n'
      'time.sleep(5)\n'
      'print("not reached")\n')
  result = subprocess.run([sys.executable, '-c', probe], cwd=training_runs.REPO,
                          env=training_runs.run_env(), capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 130, result.stderr[-3000:]
  assert 'not reached' not in result.stdout
  assert result.stderr.strip().splitlines()[-1] == 'Interrupted again: exiting without saving.'


def test_keeps_the_last_max_to_keep_checkpoints(tmp_path):
  config = training_runs.tiny_config({'checkpoint.every_steps': 1, 'checkpoint.max_to_keep': 2})
  trainer.train_and_evaluate(config, str(tmp_path))
  assert _steps(str(tmp_path)) == [3, 4]
  trained = checkpointing.restore_for_inference(str(tmp_path), step=3)
  config_restored, info = trained.config, trained.dataset_info
  assert trained.step == 3
  assert config_restored.train.num_steps == 4 and config_restored.model.num_layers == 4
  assert info.sample_rate == config.data.sample_rate and info.speakers
  with pytest.raises(checkpointing.NoCheckpointError, match='no checkpoint for step 1'):
    checkpointing.restore_for_inference(str(tmp_path), step=1)


def test_a_checkpoint_written_before_a_config_key_existed_restores_with_its_old_value(tmp_path):
  config = training_runs.tiny_config({'train.num_steps': 2})
  trainer.train_and_evaluate(config, str(tmp_path))
  saved_config = tmp_path / 'checkpoints' / '2' / 'config' / 'metadata'
  old = json.loads(saved_config.read_text())
  del old['model']['embedding_init']
  # Pre-emphasis where it was, before it moved to the model.
  old['data']['preemphasis'] = old['model'].pop('preemphasis')
  # Where the evaluation and sampling keys were, before they had sections of their own.
  old['train'].update(eval_every_steps=old['eval']['every_steps'],
                      eval_batches=old['eval']['num_batches'],
                      sample_every_steps=old['sample']['every_steps'],
                      sample_seconds=old['sample']['seconds'])
  del old['eval'], old['sample']
  saved_config.write_text(json.dumps(old))
  trained = checkpointing.restore_for_inference(str(tmp_path))
  assert trained.config.model.embedding_init == 'normal'
  assert trained.model.embedding_init == 'normal' and trained.step == 2
  assert trained.config.eval.to_dict() == config.eval.to_dict()
  assert trained.config.sample.to_dict() == config.sample.to_dict()
  assert 'eval_every_steps' not in trained.config.train
  assert trained.model.preemphasis == 0.0 and 'preemphasis' not in trained.config.data
  # Resuming it with today's config sees no change.
  state = trainer.train_and_evaluate(training_runs.tiny_config({'train.num_steps': 3}),
                                     str(tmp_path))
  assert int(state.step) == 3


def test_no_checkpoint_is_a_clear_error(tmp_path):
  with pytest.raises(checkpointing.NoCheckpointError, match='no checkpoint'):
    checkpointing.restore_for_inference(str(tmp_path))


def test_resuming_with_another_model_is_a_one_line_error_and_safe_changes_go_through(
    tmp_path, caplog):
  workdir = str(tmp_path)
  trainer.train_and_evaluate(training_runs.tiny_config({'train.num_steps': 2}), workdir)
  with pytest.raises(ValueError) as error:
    trainer.train_and_evaluate(
        training_runs.tiny_config({'train.num_steps': 4, 'model.num_layers': 2}), workdir)
  message = str(error.value)
  assert '\n' not in message and 'config.model.num_layers: 4 -> 2' in message
  assert 'config.train.num_steps' not in message and '--accept_config_change' in message
  assert _steps(workdir) == [2]
  with caplog.at_level('WARNING'):
    state = trainer.train_and_evaluate(
        training_runs.tiny_config({'train.num_steps': 4, 'train.learning_rate': 1e-4}), workdir)
  assert int(state.step) == 4
  assert 'Resuming with config.train.num_steps: 2 -> 4.' in caplog.text
  assert 'Resuming with config.train.learning_rate: 0.001 -> 0.0001.' in caplog.text
  # Accepted, a change that keeps the parameters' shapes resumes.
  state = trainer.train_and_evaluate(
      training_runs.tiny_config({'train.num_steps': 6, 'model.dtype': 'bfloat16'}), workdir,
      accept_config_change=True)
  assert int(state.step) == 6


@pytest.mark.slow
def test_turning_ema_on_or_off_on_resume_keeps_the_checkpoint(tmp_path, caplog):
  # Restoring into the other state structure used to fail and set the checkpoint aside as
  # damaged: the run started again from step 0.
  without_ema, with_ema = str(tmp_path / 'without'), str(tmp_path / 'with')
  saved = trainer.train_and_evaluate(
      training_runs.tiny_config({'train.num_steps': 2, 'train.ema_decay': 0.0}), without_ema)
  with caplog.at_level('WARNING'):
    resumed = trainer.train_and_evaluate(
        training_runs.tiny_config({'train.num_steps': 2, 'train.ema_decay': 0.5}), without_ema)
  assert int(resumed.step) == 2 and 'Checkpoint 2 has no EMA: the average starts at' in caplog.text
  for leaf, saved_leaf, ema_leaf in zip(*map(jax.tree.leaves, (
      resumed.params, saved.params, resumed.ema_params))):
    np.testing.assert_array_equal(leaf, saved_leaf)
    np.testing.assert_array_equal(ema_leaf, saved_leaf)

  saved = trainer.train_and_evaluate(
      training_runs.tiny_config({'train.num_steps': 2, 'train.ema_decay': 0.5}), with_ema)
  resumed = trainer.train_and_evaluate(
      training_runs.tiny_config({'train.num_steps': 3, 'train.ema_decay': 0.0}), with_ema)
  assert int(resumed.step) == 3 and resumed.ema_params is None
  assert _steps(with_ema) == [2, 3] and not os.path.exists(tmp_path / 'with/damaged_checkpoints')


def test_which_config_changes_are_safe_to_resume_with():
  saved = training_runs.tiny_config()
  assert config_rules.check_resumable(saved, training_runs.tiny_config(), 'w') == []
  safe = training_runs.tiny_config({'train.batch_size': 4, 'checkpoint.every_steps': 5,
                                    'data.segment_length': 100, 'seed': 3})
  assert len(config_rules.check_resumable(saved, safe, 'w')) == 4
  for key, value in (('model.num_stacks', 2), ('data.sample_rate', 8000),
                     ('data.mel.n_mels', 4), ('data.wav_dir', '/elsewhere'),
                     ('model.upsample_scales', (4, 64)), ('model.preemphasis', 0.97)):
    with pytest.raises(ValueError, match=f'config.{key}'):
      config_rules.check_resumable(saved, training_runs.tiny_config({key: value}), 'w')


def test_a_second_trainer_on_a_workdir_refuses_at_once_and_a_killed_one_blocks_nothing(
    tmp_path):
  workdir = str(tmp_path)
  first = _start_and_wait_for_checkpoint(workdir, {'train.num_steps': 100_000, **RESUME})
  began = time.perf_counter()
  second = training_runs.run_train(workdir, overrides={'train.num_steps': 4})
  assert second.returncode == 1 and time.perf_counter() - began < 60
  assert 'Traceback' not in second.stderr
  last_line = second.stderr.strip().splitlines()[-1]
  assert last_line.startswith(f'train.py: error: {workdir} is in use by process {first.pid} on ')
  first.send_signal(signal.SIGKILL)
  first.communicate(timeout=60)
  third = training_runs.run_train(workdir, overrides={'train.num_steps': _steps(workdir)[-1] + 2,
                                                      **RESUME})
  assert third.returncode == 0, third.stderr[-3000:]


def test_a_lock_file_left_behind_does_not_block_and_a_held_one_names_its_holder(tmp_path):
  workdir = str(tmp_path)
  (tmp_path / workdir_lock.LOCK_FILE).write_text('{"host": "h", "pid": 1, "started": 0}')
  config = training_runs.tiny_config({'train.num_steps': 2})
  assert int(trainer.train_and_evaluate(config, workdir).step) == 2
  held = workdir_lock.hold(workdir)
  try:
    with pytest.raises(workdir_lock.WorkdirBusyError,
                       match=f'is in use by process {os.getpid()} on '):
      trainer.train_and_evaluate(config, workdir)
  finally:
    workdir_lock.release(held)
  assert workdir_lock.hold('gs://bucket/run') is None


def _damage(workdir, step, how):
  """Damages checkpoint `step` as a crash, a full disk or a careless hand would."""
  state = os.path.join(workdir, 'checkpoints', str(step), 'state')
  if how == 'truncated file':
    data = [os.path.join(root, name) for root, _, names in os.walk(state) for name in names
            if os.sep + 'd' + os.sep in os.path.join(root, name)]
    biggest = max(data, key=os.path.getsize)
    with open(biggest, 'r+b') as f:
      f.truncate(100)
  elif how == 'no state':
    shutil.rmtree(state)
  else:  # 'empty step folder'
    step_dir = os.path.dirname(state)
    for name in os.listdir(step_dir):
      path = os.path.join(step_dir, name)
      shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


@pytest.fixture(scope='module')
def two_checkpoints(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('two_checkpoints'))
  trainer.train_and_evaluate(training_runs.tiny_config({'train.num_steps': 4, **RESUME}),
                             workdir)
  return workdir


@pytest.mark.parametrize('how', ['truncated file', 'no state', 'empty step folder'])
def test_a_damaged_latest_checkpoint_is_set_aside_and_training_resumes_from_the_previous(
    two_checkpoints, tmp_path, how, caplog):
  workdir = str(tmp_path / 'run')
  shutil.copytree(two_checkpoints, workdir)
  _damage(workdir, 4, how)
  with caplog.at_level('WARNING'):
    state = trainer.train_and_evaluate(
        training_runs.tiny_config({'train.num_steps': 6, **RESUME}), workdir)
  assert int(state.step) == 6
  assert 'Checkpoint 4 does not restore (' in caplog.text
  assert os.path.isdir(os.path.join(workdir, 'damaged_checkpoints', '4'))  # Kept, not deleted.
  assert _steps(workdir) == [2, 4, 6]  # 4 written anew from 2.


@pytest.mark.parametrize('tool', ['sample.py', 'evaluate.py'])
def test_inference_tools_pass_over_a_damaged_checkpoint_and_say_so(two_checkpoints, tmp_path,
                                                                   tool):
  workdir = str(tmp_path / 'run')
  shutil.copytree(two_checkpoints, workdir)
  _damage(workdir, 4, 'no state')
  args = ([f'--output={tmp_path / "out.wav"}', '--seconds=0.05'] if tool == 'sample.py' else
          [f'--wav_dir={os.path.join(training_runs.REPO, "wavenet_jax", "data", "speech", "slt")}'])
  result = subprocess.run([sys.executable, tool, f'--workdir={workdir}', *args],
                          cwd=training_runs.REPO, env=training_runs.run_env(),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Checkpoint 4 of ' in result.stderr and 'trying the one before' in result.stderr
  assert os.path.isdir(os.path.join(workdir, 'checkpoints', '4'))  # Left where it is.
  _damage(workdir, 2, 'empty step folder')
  result = subprocess.run([sys.executable, tool, f'--workdir={workdir}', *args],
                          cwd=training_runs.REPO, env=training_runs.run_env(),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  assert result.stderr.strip().splitlines()[-1].startswith(
      f'{tool}: error: {workdir}: no checkpoint restores: 4 (')


@pytest.fixture
def small_disk(tmp_path):
  """A 1.2 MB tmpfs (root only): room for one checkpoint of the test model, not two."""
  mount_point = tmp_path / 'small_disk'
  mount_point.mkdir()
  mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1200k', 'tmpfs',
                            str(mount_point)], capture_output=True, text=True)
  if mounted.returncode:
    pytest.skip(f'cannot mount a small tmpfs here: {mounted.stderr.strip()}')
  yield str(mount_point)
  subprocess.run(['umount', str(mount_point)], check=True)


def test_a_full_disk_stops_the_run_with_one_last_line_and_the_checkpoints_before_intact(
    small_disk):
  workdir = os.path.join(small_disk, 'run')
  for attempt in range(2):  # The restart on the still full disk says the same.
    result = training_runs.run_train(workdir, overrides={'train.num_steps': 100, **RESUME})
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    failed = re.match(rf'train.py: error: no room for checkpoint (\d+) in {workdir}/checkpoints: '
                      r'it needs about [\d.]+ MB, [\d.]+ MB are free; the checkpoints before it '
                      'are intact.', last_line)
    assert failed, (attempt, last_line)
    saved = _steps(workdir)
    assert saved and saved[-1] == int(failed.group(1)) - 2
  assert checkpointing.restore_for_inference(workdir).step == saved[-1]


def test_a_failed_asynchronous_save_is_one_line_naming_the_directory():

  class FailingManager:
    directory = '/somewhere/checkpoints'

    def save(self, *args, **kwargs):
      raise ValueError('RESOURCE_EXHAUSTED: Error writing local file "x": Failed writing\nmore')

    def wait_until_finished(self):
      self.save()

  for call in (lambda: checkpointing.finish(FailingManager()),
               lambda: checkpointing._save(FailingManager(), 4, None, None, None, True)):
    with pytest.raises(Exception):
      call()
  with pytest.raises(checkpointing.SaveError) as error:
    checkpointing.finish(FailingManager())
  assert str(error.value) == (
      'could not save a checkpoint in /somewhere/checkpoints (ValueError: RESOURCE_EXHAUSTED: '
      'Error writing local file "x": Failed writing); the checkpoints before it are intact.')


def test_a_reader_racing_the_trainer_falls_forward_to_the_newer_checkpoint(
    two_checkpoints, tmp_path, monkeypatch):
  """The reader lists [2]; then the trainer (max_to_keep=1) saves 4 and deletes 2."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(two_checkpoints, workdir)
  checkpoints = os.path.join(workdir, 'checkpoints')
  not_yet_saved = str(tmp_path / '4')
  os.rename(os.path.join(checkpoints, '4'), not_yet_saved)
  restore = checkpointing._restore_everything  # pylint: disable=protected-access

  def trainer_saves_and_deletes_meanwhile(manager, step):
    if os.path.exists(not_yet_saved):
      os.rename(not_yet_saved, os.path.join(checkpoints, '4'))
      shutil.rmtree(os.path.join(checkpoints, '2'))
    return restore(manager, step)

  monkeypatch.setattr(checkpointing, '_restore_everything', trainer_saves_and_deletes_meanwhile)
  assert checkpointing.restore_for_inference(workdir).step == 4


def test_a_damaged_checkpoint_is_passed_over_without_tracebacks(two_checkpoints, tmp_path):
  """Orbax leaves TensorStore reads in flight whose callbacks would print a traceback each."""
  workdir = str(tmp_path / 'run')
  shutil.copytree(two_checkpoints, workdir)
  for root, _, names in os.walk(os.path.join(workdir, 'checkpoints', '4', 'state')):
    for name in names:
      if os.sep + 'd' + os.sep in os.path.join(root, name):
        os.truncate(os.path.join(root, name), 100)
  restore_four_times = ('from wavenet_jax import checkpointing\n'
                        'for _ in range(4):\n'
                        f'  assert checkpointing.restore_for_inference({workdir!r}).step == 2\n')
  result = subprocess.run([sys.executable, '-c', restore_four_times], cwd=training_runs.REPO,
                          env=training_runs.run_env(), capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'Checkpoint 4 of ' in result.stderr
  assert 'Traceback' not in result.stderr and 'Event loop is closed' not in result.stderr
