"""Two train.py processes on 127.0.0.1 (jax.distributed, CPU): same result as one, preemption,
a dead process (1, or 0 with the coordination service).
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

import training_runs
from wavenet_jax import trainer

pytestmark = pytest.mark.slow

OVERRIDES = {'train.num_steps': 2, 'train.batch_size': 4, 'train.warmup_steps': 0,
             'checkpoint.every_steps': 2}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _start_two_processes(workdir: str, overrides: dict) -> list[subprocess.Popen]:
  """train.py as processes 0 and 1 of a 2-process run on 127.0.0.1 (stderr piped)."""
  address = f'127.0.0.1:{_free_port()}'
  return [
      subprocess.Popen(
          training_runs.train_command(workdir, f'--coordinator_address={address}',
                                      '--num_processes=2', f'--process_id={process_id}',
                                      overrides=overrides),
          cwd=training_runs.REPO, env=training_runs.run_env(), stdout=subprocess.DEVNULL,
          stderr=subprocess.PIPE, text=True)
      for process_id in range(2)]


def _wait_for_checkpoint_2(workdir: str, processes: list[subprocess.Popen]) -> None:
  first_checkpoint = os.path.join(workdir, 'checkpoints', '2', 'commit_success.txt')
  deadline = time.monotonic() + 240
  while not os.path.exists(first_checkpoint):
    for process in processes:
      assert process.poll() is None, process.stderr.read()[-3000:]
    assert time.monotonic() < deadline, 'no checkpoint after 240 s'
    time.sleep(0.05)


def test_two_processes_give_the_same_params_as_one(tmp_path):
  two_processes = str(tmp_path / 'two')
  processes = _start_two_processes(two_processes, OVERRIDES)
  one_process = str(tmp_path / 'one')
  trainer.train_and_evaluate(training_runs.tiny_config(OVERRIDES), one_process)
  logs = []
  for process in processes:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    logs.append(stderr)
  assert 'over 2 devices, 2 processes' in logs[0]
  training_runs.assert_params_close(training_runs.checkpoint_params(two_processes),
                                    training_runs.checkpoint_params(one_process))


def test_sigterm_on_every_process_saves_at_a_common_step_and_exits(tmp_path):
  """The multi-host preemption path: orbax's sync point, not the single-process SIGTERM flag."""
  workdir = str(tmp_path)
  processes = _start_two_processes(workdir, {**OVERRIDES, 'train.num_steps': 100_000})
  _wait_for_checkpoint_2(workdir, processes)
  for process in processes:
    process.send_signal(signal.SIGTERM)
  logs = []
  for process in processes:
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 75, stderr[-3000:]  # Saved, unfinished: resume.
    assert 'Traceback' not in stderr
    logs.append(stderr)
  steps = sorted(int(name) for name in os.listdir(os.path.join(workdir, 'checkpoints'))
                 if name.isdigit())
  assert steps[-1] > 2
  assert f'Preempted: saved checkpoint {steps[-1]} in' in logs[0]


def _kill_and_read_the_other(processes: list[subprocess.Popen], dead: int) -> str:
  """Kills process `dead`; the other must exit 75 within 40 s, no stack: its last line."""
  processes[dead].kill()  # train.py's child, which trains, dies with it.
  killed = time.monotonic()
  _, stderr = processes[1 - dead].communicate(timeout=180)
  processes[dead].wait()
  assert processes[1 - dead].returncode == 75, stderr[-3000:]
  assert time.monotonic() - killed < 40
  assert 'Traceback' not in stderr and 'Check failure stack trace' not in stderr, stderr[-3000:]
  last_line = stderr.strip().splitlines()[-1]
  assert last_line.endswith('start every process again to resume from the last checkpoint. '
                            '(exit status 75)'), last_line
  return last_line


def test_a_dead_process_stops_the_other_with_the_resume_status_and_one_line(tmp_path):
  """Not an abort after the heartbeat timeout: status 75 within seconds, naming the lost one."""
  workdir = str(tmp_path)
  processes = _start_two_processes(workdir, {**OVERRIDES, 'train.num_steps': 100_000})
  _wait_for_checkpoint_2(workdir, processes)
  last_line = _kill_and_read_the_other(processes, dead=1)
  # gloo says 'reset' or 'closed', depending on where the peer's socket was.
  assert re.match(r'train\.py: process 1 of 2 is lost \(Connection (reset|closed) by peer in '
                  r'a collective\): unfinished; ', last_line), last_line


def test_a_dead_process_0_stops_the_other_in_one_line_and_a_relaunch_resumes(tmp_path):
  """Process 0 hosts JAX's coordination service: without it JAX aborts the other process."""
  workdir = str(tmp_path)
  processes = _start_two_processes(workdir, {**OVERRIDES, 'train.num_steps': 100_000})
  _wait_for_checkpoint_2(workdir, processes)
  last_line = _kill_and_read_the_other(processes, dead=0)
  # Whichever the survivor meets first: a collective that fails (caught in the loop), or JAX's
  # abort on losing the coordination service (caught by the parent process, its log kept).
  assert last_line.startswith('train.py: process 0 of 2 is lost ('), last_line
  if "JAX's log: " in last_line:
    assert last_line.startswith('train.py: process 0 of 2 is lost (its coordination service '
                                "stopped answering; JAX's log: "), last_line
    with open(last_line.split("JAX's log: ")[1].split(')')[0]) as log:
      assert 'Check failure stack trace' in log.read()  # The stack, kept out of the console.
  else:
    assert re.search(r'Connection (reset|closed) by peer in a collective', last_line), last_line

  saved = max(int(name) for name in os.listdir(os.path.join(workdir, 'checkpoints'))
              if name.isdigit())
  relaunched = _start_two_processes(workdir, {**OVERRIDES, 'train.num_steps': saved + 2})
  logs = [process.communicate(timeout=300)[1] for process in relaunched]
  assert [process.returncode for process in relaunched] == [0, 0], logs[0][-3000:]
  assert f'Resuming from step {saved}:' in logs[0]
