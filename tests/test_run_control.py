"""run_control.lost_processes: which processes a multi-process run lost, from the barrier."""
import jax
import pytest

from wavenet_jax import run_control

PEER_GONE = jax.errors.JaxRuntimeError(
    'UNKNOWN: Gloo all-reduce failed: [pair.cc:538] Read error [10.0.0.2]:4711: Connection '
    'reset by peer')


class _Client:
  """The coordination service's client, whose barrier raises `error` (None: all came)."""

  def __init__(self, error):
    self.error = error

  def wait_at_barrier(self, barrier_id, timeout_in_ms):
    del barrier_id, timeout_in_ms
    if self.error:
      raise jax.errors.JaxRuntimeError(self.error)


@pytest.fixture
def four_processes(monkeypatch):
  monkeypatch.setattr(jax, 'process_count', lambda: 4)
  return lambda error: monkeypatch.setattr(run_control.distributed.global_state, 'client',
                                           _Client(error))


def test_the_barrier_names_the_lost_processes(four_processes):
  four_processes('DEADLINE_EXCEEDED: Barrier timed out. Id: x.\n# of tasks that reached the '
                 'barrier: 2/4.\nThe first task at the barrier: 0. Some timed out task names:'
                 '\n1\n3\n\n\nRPC: /xla.coordination.CoordinationService/Barrier')
  saving = RuntimeError('could not save a checkpoint')
  saving.__cause__ = PEER_GONE
  lost = run_control.lost_processes(saving)
  assert lost.processes == [1, 3]
  assert str(lost).startswith('processes 1, 3 of 4 are lost (Connection reset by peer in a '
                              'collective): unfinished; ')


def test_no_answer_from_the_coordination_service_is_process_0_lost(four_processes):
  four_processes('UNAVAILABLE: Failed to send RPC to coordination service.')
  assert run_control.lost_processes(PEER_GONE).processes == [0]


def test_other_failures_are_not_a_lost_process(four_processes):
  four_processes(None)  # Every process reached the barrier.
  assert run_control.lost_processes(PEER_GONE) is None
  assert run_control.lost_processes(ValueError('RESOURCE_EXHAUSTED: out of memory')) is None
