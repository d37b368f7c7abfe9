"""Run control: the workdir a run holds, when it stops, and how it says why.

- `held_workdir(workdir)`: creates and locks the workdir for the run (process 0 holds the
  lock; every process raises if another run has it), and removes a workdir this run created
  if the run fails before writing anything there.
- Stopping early: `StopSignals` (SIGTERM and Ctrl-C of a single-process run), the time
  budget (`TimeBudget`, config.train.max_seconds), a NaN/inf step (`check_finite`).
- How a run says it stopped: `TrainingPreempted` after a saved checkpoint, which train.py
  turns into `PREEMPTED_EXIT_STATUS`, as it does `ProcessesLost` (`lost_processes`: a process
  of a multi-process run died); `TrainingDivergedError`.
"""
import contextlib
import math
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Iterator, Optional

from absl import logging
from etils import epath
import jax
from jax._src import distributed  # The coordination service's client: no public name.
from jax.experimental import multihost_utils
import ml_collections
import numpy as np

from wavenet_jax import checkpointing
from wavenet_jax import workdir_lock


class TrainingDivergedError(RuntimeError):
  """The loss (or the parameters) became NaN/inf; no checkpoint was written since."""


# train.py's exit status after a preemption (SIGTERM, Ctrl-C or orbax's preemption signal)
# saved a checkpoint: the run is unfinished and resumes when started again (EX_TEMPFAIL).
PREEMPTED_EXIT_STATUS = 75


class TrainingPreempted(Exception):
  """Training stopped early on a preemption signal, after saving a checkpoint.

  Attributes:
    step: the step of the saved checkpoint.
  """

  def __init__(self, step: int, directory: str):
    super().__init__(f'preempted: saved checkpoint {step} in {directory}; start the same '
                     'command again to resume.')
    self.step = step


class ProcessesLost(Exception):
  """Processes of a multi-process run died (killed, or their host lost): the run cannot go on.

  The processes still running stop too; the run resumes from its last checkpoint when every
  process is started again.

  Args:
    processes: the ids of the lost processes (empty: not known).
    symptom: how their loss showed, for the message.
    num_processes: the run's process count, for the message (None: not known).

  Attributes:
    processes: the ids of the lost processes (empty: not known).
  """

  def __init__(self, processes: list[int], symptom: str, num_processes: Optional[int]):
    ids = ', '.join(map(str, processes))
    of = f' of {num_processes}' if num_processes else ''
    lost = {0: 'another process is', 1: f'process {ids}{of} is'}.get(
        len(processes), f'processes {ids}{of} are')
    super().__init__(f'{lost} lost ({symptom}): unfinished; start every process again to '
                     'resume from the last checkpoint.')
    self.processes = processes


# How a collective's transport says that the process at the other end is gone.
_PEER_GONE = re.compile(r'Connection (reset|closed) by peer|Socket closed|Broken pipe')
# How long the processes still running wait for each other to find which ones are lost.
_LOST_BARRIER_MS = 10_000
_TIMED_OUT_TASKS = 'Some timed out task names:'


def lost_processes(error: BaseException) -> Optional[ProcessesLost]:
  """ProcessesLost (to raise) if `error` says that another process died, else None.

  A dead process fails the next collective of the others (a step, a checkpoint's save) with a
  transport error, whichever exception carries it. The processes still running then meet at a
  barrier of the coordination service, whose timeout names the processes that did not come
  (seconds: well before the service itself misses their heartbeats and aborts every process).
  """
  symptom = next((match.group(0) for link in _chain(error)
                  if (match := _PEER_GONE.search(str(link)))), None)
  if jax.process_count() == 1 or symptom is None:
    return None
  try:
    distributed.global_state.client.wait_at_barrier('wavenet_jax_lost_processes',
                                                    _LOST_BARRIER_MS)
  except jax.errors.JaxRuntimeError as barrier_error:
    message = str(barrier_error)
    if _TIMED_OUT_TASKS in message:
      names = message.split(_TIMED_OUT_TASKS)[1].split('\n\n')[0].split()
      lost = sorted(int(name) for name in names if name.isdigit())
    else:  # The coordination service runs in process 0: no answer, that is the one lost.
      lost = [0] if 'UNAVAILABLE' in message else []
    return ProcessesLost(lost, f'{symptom} in a collective', jax.process_count())
  return None  # Every process is there: another failure.


def _chain(error: BaseException) -> Iterator[BaseException]:
  """`error` and the exceptions it was raised from or while handling."""
  while error is not None:
    yield error
    error = error.__cause__ or error.__context__


@contextlib.contextmanager
def held_workdir(workdir: str) -> Iterator[None]:
  """Holds workdir for the run inside the block; a workdir created for a run that fails
  before writing anything there is removed.

  Raises:
    workdir_lock.WorkdirBusyError: if another run holds the workdir.
    ValueError: if workdir is a file.
  """
  created = not epath.Path(workdir).exists()
  lock = _hold_workdir(workdir)
  try:
    yield
  except BaseException:
    if created:
      _remove_if_nothing_written(workdir)
    raise
  finally:
    workdir_lock.release(lock)


def _hold_workdir(workdir: str) -> Optional[Any]:
  """Creates the workdir and locks it on process 0; every process raises if it is busy."""
  lock, busy = None, ''
  path = epath.Path(workdir)
  if path.exists() and not path.is_dir():
    raise ValueError(f'--workdir={workdir} is a file, not a folder.')
  if jax.process_index() == 0:
    path.mkdir(parents=True, exist_ok=True)
    try:
      lock = workdir_lock.hold(workdir)
    except workdir_lock.WorkdirBusyError as error:
      busy = str(error)
  if jax.process_count() > 1:
    if bool(multihost_utils.broadcast_one_to_all(np.bool_(busy))) and not busy:
      busy = f'{workdir} is in use by another run (process 0 holds no lock on it).'
  if busy:
    raise workdir_lock.WorkdirBusyError(busy)
  return lock


def _remove_if_nothing_written(workdir: str) -> None:
  """Removes a workdir this run created when it failed before writing anything there.

  Only the lock and an empty checkpoints folder count as nothing: summaries, clips or a
  checkpoint (a run that diverged at step 3, say) are kept.
  """
  path = epath.Path(workdir)
  if jax.process_index() != 0 or not path.exists():
    return
  checkpoints = checkpointing.checkpoint_dir(workdir)
  if ({entry.name for entry in path.iterdir()} <= {workdir_lock.LOCK_FILE, checkpoints.name}
      and not (checkpoints.exists() and any(checkpoints.iterdir()))):
    path.rmtree()


class StopSignals:
  """Records SIGTERM and a first Ctrl-C (SIGINT) of a single-process run: save, then stop.

  A second Ctrl-C exits at once (status 130), without saving. Multi-process runs install no
  handler here: they stop on orbax's preemption sync for SIGTERM instead.
  """

  def __init__(self):
    self._event = threading.Event()
    self._previous = {}
    if jax.process_count() == 1:
      self._previous = {signum: signal.signal(signum, self._handle) or signal.SIG_DFL
                        for signum in (signal.SIGTERM, signal.SIGINT)}

  def _handle(self, signum, frame):
    del frame
    if signum == signal.SIGINT and self._event.is_set():
      print('Interrupted again: exiting without saving.', file=sys.stderr, flush=True)
      os._exit(130)  # pylint: disable=protected-access  # At once: no cleanup to wait for.
    logging.warning('%s received: saving a checkpoint after this step, then exiting%s.',
                    signal.Signals(signum).name,
                    ' (Ctrl-C again: exit at once)' if signum == signal.SIGINT else '')
    self._event.set()

  def is_set(self) -> bool:
    return self._event.is_set()

  def restore(self) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


class TimeBudget:
  """config.train.max_seconds (> 0) of wall-clock time, counted from this object's creation.

  Created when a run starts, so that preparing data, restoring and compiling count: a run
  given the seconds of a wall-clock allocation stops inside it (apart from the final
  checkpoint and evaluation). With several processes, process 0's clock decides, at the
  logging steps only, so that every process stops after the same step.
  """

  def __init__(self, train_config: ml_collections.ConfigDict):
    self._seconds = float(train_config.max_seconds)
    self._log_every_steps = int(train_config.log_every_steps)
    self._start = time.perf_counter()

  def spent(self, step: int) -> bool:
    """Whether the budget is spent after `step` (False without a budget)."""
    if self._seconds <= 0:
      return False
    if jax.process_count() == 1:
      return time.perf_counter() - self._start >= self._seconds
    if step % self._log_every_steps:
      return False
    spent = time.perf_counter() - self._start >= self._seconds
    return bool(multihost_utils.broadcast_one_to_all(np.bool_(spent)))


def check_finite(step: int, metrics: dict[str, float], workdir: str) -> None:
  if not (math.isfinite(metrics['loss']) and math.isfinite(metrics['grad_norm'])
          and metrics['params_finite'] == 1.0):
    raise TrainingDivergedError(
        f'training diverged at step {step}: loss={metrics["loss"]}, '
        f'grad_norm={metrics["grad_norm"]}; stopped without saving. The last good checkpoint '
        f'is in {checkpointing.checkpoint_dir(workdir)} (lower config.train.learning_rate or '
        'config.train.grad_clip_norm).')
