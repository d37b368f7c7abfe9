"""One training run per workdir: an advisory lock held by the run's process 0.

`hold(workdir)` takes an exclusive `fcntl.flock` on WORKDIR/lock and writes who holds it
(host, pid, start time) into that file. The kernel releases the lock when the holding process
exits, however it exits (SIGKILL included), so a killed run never blocks its restart. Only a
local (or NFS) workdir can be locked this way: a `gs://` workdir is not guarded, and two runs
started on one such workdir would both write to it.
"""
import fcntl
import json
import os
import socket
import time
from typing import IO, Optional

from wavenet_jax import storage

LOCK_FILE = 'lock'


class WorkdirBusyError(ValueError):
  """Another live process holds the workdir; the message names it."""


def _holder(path: str) -> str:
  try:
    with open(path) as f:
      holder = json.load(f)
    started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(holder['started']))
    return f'process {holder["pid"]} on {holder["host"]} (started {started})'
  except (OSError, ValueError, KeyError):
    return 'another process'


def hold(workdir: str) -> Optional[IO[str]]:
  """Locks workdir for this process until it exits; returns the open lock file to keep.

  Returns None (nothing locked) for a workdir that is not a local path, such as gs://.

  Raises:
    WorkdirBusyError: if a live process holds the lock.
  """
  if storage.is_remote(workdir):
    return None
  path = os.path.join(workdir, LOCK_FILE)
  lock_file = open(path, 'a+')  # pylint: disable=consider-using-with  # Held until exit.
  try:
    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    lock_file.close()
    raise WorkdirBusyError(f'{workdir} is in use by {_holder(path)}: wait for that run, stop '
                           'it, or use another --workdir.') from None
  lock_file.seek(0)
  lock_file.truncate()
  json.dump({'host': socket.gethostname(), 'pid': os.getpid(), 'started': time.time()},
            lock_file)
  lock_file.flush()
  return lock_file


def release(lock_file: Optional[IO[str]]) -> None:
  """Releases a lock taken by `hold` (also released when the process exits)."""
  if lock_file is not None:
    fcntl.flock(lock_file, fcntl.LOCK_UN)
    lock_file.close()
