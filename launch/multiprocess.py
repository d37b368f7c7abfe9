r"""Starts N copies of a JAX program as one multi-process job, on one host or several.

Each copy gets `--coordinator_address=HOST:PORT --num_processes=N --process_id=I` appended to
its command line (the flags train.py passes to `jax.distributed.initialize`). The launcher
prefixes every output line with `[process I]`, waits for all processes, and if one fails it
stops the others and exits with the failed process's status.

Two processes on this machine (on CPU each process contributes its CPU device(s)):
  python launch/multiprocess.py --num_processes=2 -- \
      python train.py --config=experiments/tiny.py --workdir=runs/tiny_2proc

Four processes on two hosts (run one line on each host; HOST_A is reachable from HOST_B):
  python launch/multiprocess.py --num_processes=4 --process_ids=0,1 \
      --coordinator_address=HOST_A:8476 -- python train.py ...      # on HOST_A
  python launch/multiprocess.py --num_processes=4 --process_ids=2,3 \
      --coordinator_address=HOST_A:8476 -- python train.py ...      # on HOST_B
"""
import argparse
import dataclasses
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import IO, Sequence

from absl import app
from absl.flags import argparse_flags

_POLL_SECONDS = 0.2


@dataclasses.dataclass(frozen=True)
class LaunchPlan:
  """What to start: one command line per local process."""
  coordinator_address: str
  num_processes: int
  commands: dict[int, list[str]]  # process id -> argv.


def free_local_port() -> int:
  """A TCP port on 127.0.0.1 that is free right now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
    sock.bind(('127.0.0.1', 0))
    return sock.getsockname()[1]


def parse_process_ids(text: str, num_processes: int) -> list[int]:
  """'0,1' -> [0, 1]; '' -> all of range(num_processes). Raises ValueError on bad ids."""
  if not text:
    return list(range(num_processes))
  try:
    ids = [int(part) for part in text.split(',')]
  except ValueError:
    raise ValueError(f'--process_ids must be comma-separated integers, got {text!r}') from None
  if len(set(ids)) != len(ids) or not all(0 <= i < num_processes for i in ids):
    raise ValueError(f'--process_ids must be distinct ids in [0, {num_processes}), got {text!r}')
  return ids


def make_plan(command: Sequence[str], num_processes: int, process_ids: Sequence[int],
              coordinator_address: str) -> LaunchPlan:
  """Appends the distributed flags to `command` for each local process id.

  Args:
    command: the program's argv, e.g. ['python', 'train.py', '--config=...'].
    num_processes: processes in the whole job, over all hosts.
    process_ids: the ids started on this host.
    coordinator_address: HOST:PORT of process 0; '' picks a free port on 127.0.0.1, which
      needs every process on this host.

  Returns:
    The plan; raises ValueError on inconsistent arguments.
  """
  if num_processes < 1:
    raise ValueError(f'--num_processes must be >= 1, got {num_processes}')
  if not command:
    raise ValueError('no command given: put it after --, e.g. -- python train.py ...')
  if not coordinator_address:
    if len(process_ids) != num_processes:
      raise ValueError('--coordinator_address is required when some processes run on other '
                       'hosts (--process_ids is not all of them)')
    coordinator_address = f'127.0.0.1:{free_local_port()}'
  commands = {
      i: [*command, f'--coordinator_address={coordinator_address}',
          f'--num_processes={num_processes}', f'--process_id={i}']
      for i in process_ids}
  return LaunchPlan(coordinator_address, num_processes, commands)


class _Interrupted(Exception):
  """The launcher received a termination signal."""

  def __init__(self, signum: int):
    super().__init__(signum)
    self.signum = signum


def _relay_output(stream: IO[bytes], prefix: str, lock: threading.Lock) -> None:
  for raw_line in iter(stream.readline, b''):
    line = raw_line.decode('utf-8', errors='replace').rstrip('\n')
    with lock:
      print(f'{prefix}{line}', flush=True)
  stream.close()


def _stop(processes: dict[int, subprocess.Popen], grace_seconds: float) -> None:
  """SIGTERM to every running process group, then SIGKILL after `grace_seconds`."""
  running = [p for p in processes.values() if p.poll() is None]
  for process in running:
    _signal_group(process, signal.SIGTERM)
  deadline = time.monotonic() + grace_seconds
  for process in running:
    try:
      process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      _signal_group(process, signal.SIGKILL)
      process.wait()


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
  try:
    # Each process leads its own session (start_new_session), so its group id is its pid.
    os.killpg(process.pid, sig)
  except ProcessLookupError:
    pass


def _exit_status(returncode: int) -> int:
  """Popen returncode (negative = killed by that signal) -> shell-style exit status."""
  return 128 - returncode if returncode < 0 else returncode


def run_plan(plan: LaunchPlan, grace_seconds: float) -> int:
  """Starts every process of `plan`, relays their output, and waits.

  Returns:
    0 when all processes exit 0; otherwise the exit status of the first process that failed
    (the others are stopped: SIGTERM, then SIGKILL after `grace_seconds`).
  """
  lock = threading.Lock()
  processes: dict[int, subprocess.Popen] = {}
  relays = []

  def on_signal(signum: int, unused_frame) -> None:
    raise _Interrupted(signum)

  previous_handler = signal.signal(signal.SIGTERM, on_signal)
  status = 0
  try:
    for process_id, argv in plan.commands.items():
      try:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
      except OSError as error:
        print(f'multiprocess: cannot start process {process_id}: {error}', file=sys.stderr,
              flush=True)
        status = 127
        break
      processes[process_id] = process
      relay = threading.Thread(target=_relay_output,
                               args=(process.stdout, f'[process {process_id}] ', lock))
      relay.start()
      relays.append(relay)
    while status == 0 and any(p.poll() is None for p in processes.values()):
      for process_id, process in processes.items():
        if process.poll() not in (None, 0):
          status = _exit_status(process.returncode)
          print(f'multiprocess: process {process_id} exited with status {status}; '
                'stopping the others', file=sys.stderr, flush=True)
          break
      time.sleep(_POLL_SECONDS)
    if status == 0:  # Every process has exited: report the first failure, if any.
      status = next((_exit_status(p.returncode) for p in processes.values() if p.returncode),
                    0)
  except (KeyboardInterrupt, _Interrupted) as interrupt:
    signum = interrupt.signum if isinstance(interrupt, _Interrupted) else signal.SIGINT
    print(f'multiprocess: got {signal.Signals(signum).name}; stopping all processes',
          file=sys.stderr, flush=True)
    status = 128 + signum
  finally:
    _stop(processes, grace_seconds)
    for relay in relays:
      relay.join()
    signal.signal(signal.SIGTERM, previous_handler)
  return status


def parse_flags(argv: list[str]) -> argparse.Namespace:
  parser = argparse_flags.ArgumentParser(
      description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--num_processes', type=int, required=True,
                      help='Processes in the whole job, over all hosts.')
  parser.add_argument('--process_ids', default='',
                      help='Comma-separated ids of the processes to start on this host '
                           '(default: all, 0..num_processes-1).')
  parser.add_argument('--coordinator_address', default='',
                      help='HOST:PORT of process 0, reachable from every host (default: '
                           '127.0.0.1 and a free port; only when all processes are local).')
  parser.add_argument('--grace_seconds', type=float, default=10.0,
                      help='After a failure, how long the other processes get to exit after '
                           'SIGTERM before SIGKILL.')
  parser.add_argument('--dry_run', action='store_true',
                      help='Print the command of each process (one per line) and exit.')
  parser.add_argument('command', nargs='*',
                      help='The program and its arguments, after --.')
  return parser.parse_args(argv[1:])


def main(args: argparse.Namespace) -> None:
  try:
    plan = make_plan(args.command, args.num_processes,
                     parse_process_ids(args.process_ids, args.num_processes),
                     args.coordinator_address)
  except ValueError as error:
    sys.exit(f'multiprocess.py: {error}')
  if args.dry_run:
    for argv in plan.commands.values():
      print(shlex.join(argv))
    return
  sys.exit(run_plan(plan, args.grace_seconds))


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
