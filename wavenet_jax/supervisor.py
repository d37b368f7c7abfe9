"""A multi-process run's work in a child process, so that losing process 0 exits 75 in one line.

JAX's coordination service runs in process 0. When process 0 dies, the JAX client of every
other process logs a fatal line and a C++ stack and aborts at once (SIGABRT): jaxlib 0.10's
`missed_heartbeat_callback` cannot hand the error to Python (std::bad_cast, also an abort).
So train.py runs the work of a multi-process run in a child process (`run_in_child`) that
relays the child's stderr; an abort that follows the client's fatal line becomes
`run_control.ProcessesLost` (train.py: one line, status 75) with the log from that line on
saved in the workdir. Any other exit of the child, a crash included, passes through with its
whole output and its status.
"""
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys

from etils import epath

from wavenet_jax import run_control

# Set in the child's environment: the parent's process id.
_PARENT_ENV = 'WAVENET_JAX_SUPERVISOR_PID'
# The fatal log line of JAX's distributed client (xla/pjrt/distributed/client.h) when its
# coordination service reports an error or stops answering.
_CLIENT_FATAL = re.compile(rb'^F\d{4} [^\]]*\] Terminating process because the JAX distributed '
                           rb'service detected fatal errors')
# The status on that line when the service itself is gone (not reporting another's loss).
_SERVICE_GONE = b'Failed to send RPC to coordination service'
_PR_SET_PDEATHSIG = 1


def in_child() -> bool:
  """Whether this process is the child of `run_in_child`."""
  return _PARENT_ENV in os.environ


def die_with_parent() -> None:
  """Makes the child get SIGKILL when its parent dies (killed, or its host lost), on Linux.

  Without it, killing the parent alone would leave the training child running on its own.
  """
  if not sys.platform.startswith('linux'):
    return
  ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
  if os.getppid() != int(os.environ[_PARENT_ENV]):  # The parent died before prctl.
    os._exit(1)  # pylint: disable=protected-access


def run_in_child(workdir: str, num_processes: int | None) -> int:
  """Runs this program's command line again in a child process and waits for it.

  The child inherits stdin and stdout; its stderr is relayed line by line. SIGTERM is passed
  on to the child (multi-process runs save on it); SIGINT is ignored here, as a terminal's
  Ctrl-C reaches the child directly.

  Args:
    workdir: where the log of an abort on losing the coordination service is saved.
    num_processes: the run's process count, for the message (None: not known here).

  Returns:
    The child's exit status (128 + N when signal N ended it).

  Raises:
    run_control.ProcessesLost: if the child aborted on losing the coordination service.
  """
  child = subprocess.Popen([sys.executable, *sys.orig_argv[1:]], stderr=subprocess.PIPE,
                           env={**os.environ, _PARENT_ENV: str(os.getpid())})
  previous = {signal.SIGTERM: signal.signal(signal.SIGTERM,
                                            lambda signum, frame: child.send_signal(signum)),
              signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
  try:
    held = []  # The client's fatal line and what follows it, until the child's status is known.
    for line in iter(child.stderr.readline, b''):
      if held or _CLIENT_FATAL.match(line):
        held.append(line)
      else:
        sys.stderr.buffer.write(line)
        sys.stderr.flush()
    status = child.wait()
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
  if held and status == -signal.SIGABRT:
    log = epath.Path(workdir) / f'lost_process.{socket.gethostname()}.{child.pid}.log'
    log.parent.mkdir(parents=True, exist_ok=True)  # Process 0 may have died before creating it.
    log.write_bytes(b''.join(held))
    service_gone = _SERVICE_GONE in held[0]
    symptom = ('its coordination service stopped answering' if service_gone
               else 'the coordination service reported a lost process')
    raise run_control.ProcessesLost([0] if service_gone else [], f"{symptom}; JAX's log: {log}",
                                    num_processes)
  sys.stderr.buffer.write(b''.join(held))
  sys.stderr.flush()
  return 128 - status if status < 0 else status
