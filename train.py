"""Trains a WaveNet: python train.py --config=experiments/tiny.py --workdir=runs/tiny.

Any config key can be overridden, e.g. --config.train.batch_size=8. The run resumes from the
latest checkpoint in --workdir. Multi-process: pass --coordinator_address, --num_processes and
--process_id (jax.distributed.initialize); without them a TPU pod or a SLURM job with several
tasks is detected and initialised automatically, and anything else runs as one process.

Exit status: 0 when config.train.num_steps (or max_seconds) are done; 75 after a preemption
(SIGTERM, Ctrl-C, orbax's preemption signal) saved a checkpoint, or when another process of a
multi-process run died (one line names it): unfinished, start the same command again to resume
(launch/ treats 75 so); 1 for bad input (one line); 130 for a second Ctrl-C (exits at once,
without saving). A multi-process run trains in a child process (wavenet_jax/supervisor.py), so
that losing process 0, which makes JAX abort the others, is that one line too.
"""
import glob
import os
import sys

from absl import app
from absl import flags
import jax
from ml_collections import config_flags

from wavenet_jax import checkpointing
from wavenet_jax import cli
from wavenet_jax import host_memory
from wavenet_jax import run_control
from wavenet_jax import supervisor
from wavenet_jax import trainer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints and summaries.')
_COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0, for multi-process runs.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, in [0, num_processes).')
_ACCEPT_CONFIG_CHANGE = flags.DEFINE_bool(
    'accept_config_change', False, 'Resume a workdir whose checkpoint was written with another '
    'model or data config (config.model.*, the dataset, its sample rate or mel settings).')
flags.mark_flags_as_required(['config', 'workdir'])

# PCI vendor id of Google TPU chips (how JAX recognises a Cloud TPU VM).
_TPU_PCI_VENDOR = '0x1ae0'
def _multi_process_environment() -> str:
  """'SLURM' or 'TPU' when launched as one of several processes by either, else ''."""
  if 'SLURM_JOB_ID' in os.environ and int(os.environ.get('SLURM_NTASKS', '1')) > 1:
    return 'SLURM'
  for vendor_file in glob.glob('/sys/bus/pci/devices/*/vendor'):
    with open(vendor_file) as f:
      if f.read().strip() == _TPU_PCI_VENDOR:
        return 'TPU'
  return ''


def _multi_process() -> bool:
  if _NUM_PROCESSES.value is not None:
    return _NUM_PROCESSES.value > 1
  return bool(_multi_process_environment())


def initialize_distributed() -> None:
  explicit = (_COORDINATOR_ADDRESS.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if any(value is not None for value in explicit):
    if any(value is None for value in explicit):
      raise app.UsageError('--coordinator_address, --num_processes and --process_id go together.')
    jax.distributed.initialize(coordinator_address=_COORDINATOR_ADDRESS.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
    return
  environment = _multi_process_environment()
  if not environment:
    return
  try:
    jax.distributed.initialize()
  except (RuntimeError, ValueError) as error:
    raise app.UsageError(f'{environment} environment detected, but jax.distributed.initialize() '
                         f'failed: {error}') from error


@cli.exit_on_error(run_control.TrainingDivergedError, checkpointing.SaveError, ValueError,
                   FileNotFoundError)
def main(argv: list[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  try:
    config = _CONFIG.value
    config.keys()  # A file that failed to load raises here, at its first use.
  except OSError as error:
    raise ValueError(f'--config: {str(error).strip().splitlines()[-1].strip()}') from None
  # Before JAX's first computation: XLA:CPU's per-step temporary buffer is then reused instead
  # of page-faulted in again every step (see host_memory).
  host_memory.retain_freed_host_memory()
  try:
    if supervisor.in_child():
      supervisor.die_with_parent()
    elif _multi_process():  # JAX aborts a process that loses process 0: train in a child.
      sys.exit(supervisor.run_in_child(_WORKDIR.value, _NUM_PROCESSES.value))
    initialize_distributed()
    trainer.train_and_evaluate(config, _WORKDIR.value,
                               accept_config_change=_ACCEPT_CONFIG_CHANGE.value)
  except run_control.TrainingPreempted as preempted:
    print(f'train.py: {preempted} (exit status {run_control.PREEMPTED_EXIT_STATUS})',
          file=sys.stderr, flush=True)
    sys.exit(run_control.PREEMPTED_EXIT_STATUS)
  except run_control.ProcessesLost as lost:
    print(f'train.py: {lost} (exit status {run_control.PREEMPTED_EXIT_STATUS})',
          file=sys.stderr, flush=True)
    # At once: JAX's exit handler would wait for the lost process, then abort (SIGABRT).
    os._exit(run_control.PREEMPTED_EXIT_STATUS)  # pylint: disable=protected-access


if __name__ == '__main__':
  cli.run(main)
