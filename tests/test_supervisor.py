"""supervisor.run_in_child: which exits of the child are a lost coordinator, which pass through.

The child here is a small Python program that prints what JAX's client prints, then aborts or
exits; tests/test_multiprocess.py kills a real process 0.
"""
import os
import signal
import sys
import textwrap

import pytest

from wavenet_jax import run_control
from wavenet_jax import supervisor

CLIENT_FATAL = (
    'F1206 15:27:29.908487   17792 client.h:80] Terminating process because the JAX '
    'distributed service detected fatal errors. This most likely indicates that another task '
    'died. absl::Status: UNAVAILABLE: Failed to send RPC to coordination service. Either the '
    'leader task was preempted/died/restarted unexpectedly\n*** Check failure stack trace: ***\n'
    '    @     0x7fc406640634  absl::log_internal::LogMessage::SendToLog()\n')


def _run_child(monkeypatch, tmp_path, code: str) -> int:
  monkeypatch.setattr(sys, 'orig_argv', [sys.executable, '-c', textwrap.dedent(code)])
  return supervisor.run_in_child(str(tmp_path), 2)


def test_an_abort_after_the_client_fatal_line_is_process_0_lost(monkeypatch, tmp_path, capfd):
  with pytest.raises(run_control.ProcessesLost) as lost:
    _run_child(monkeypatch, tmp_path, f"""
        import os, sys
        sys.stderr.write('step 10\\n' + {CLIENT_FATAL!r})
        sys.stderr.flush()
        os.abort()""")
  assert lost.value.processes == [0]
  assert str(lost.value).startswith('process 0 of 2 is lost (its coordination service stopped '
                                    "answering; JAX's log: ")
  assert capfd.readouterr().err == 'step 10\n'  # The stack is kept out of the console ...
  (log,) = tmp_path.glob('lost_process.*.log')
  assert log.read_text() == CLIENT_FATAL  # ... and saved in the workdir.


@pytest.mark.parametrize('code, status', [
    # A crash of another kind: its abort and whole output pass through.
    ("import os, sys; sys.stderr.write('F1206 other.cc:1] Check failed\\n'); "
     "sys.stderr.flush(); os.abort()", 128 + signal.SIGABRT),
    # The fatal line, but the child exited by itself: not the client's abort.
    (f"import sys; sys.stderr.write({CLIENT_FATAL!r}); sys.exit(3)", 3),
    ('import sys; sys.exit(75)', 75),
])
def test_other_exits_pass_through_with_their_output(monkeypatch, tmp_path, capfd, code, status):
  assert _run_child(monkeypatch, tmp_path, code) == status
  err = capfd.readouterr().err
  assert ('F1206' in err) == ('F1206' in code)
  assert not list(tmp_path.iterdir())


def test_sigterm_is_passed_on_to_the_child(monkeypatch, tmp_path):
  # The child says it is ready, on stderr; the parent's SIGTERM must reach it.
  code = """
      import signal, sys, time
      signal.signal(signal.SIGTERM, lambda *_: sys.exit(75))
      sys.stderr.write('ready\\n'); sys.stderr.flush()
      time.sleep(10)
      sys.exit(1)"""
  def own_handler(signum, frame):
    del signum, frame
  previous = signal.signal(signal.SIGTERM, own_handler)  # Not the end of pytest if not passed on.
  try:
    monkeypatch.setattr(sys, 'stderr', _SignalOnWrite(os.getpid(), signal.SIGTERM))
    assert _run_child(monkeypatch, tmp_path, code) == 75
    assert signal.getsignal(signal.SIGTERM) is own_handler  # Restored.
  finally:
    signal.signal(signal.SIGTERM, previous)


class _SignalOnWrite:
  """A stderr that sends this process `signum` at the first write (the child's 'ready')."""

  def __init__(self, pid: int, signum: int):
    self._pid, self._signum, self._sent = pid, signum, False
    self.buffer = self

  def flush(self) -> None:
    pass

  def write(self, data: bytes) -> None:
    del data
    if not self._sent:
      self._sent = True
      os.kill(self._pid, self._signum)
