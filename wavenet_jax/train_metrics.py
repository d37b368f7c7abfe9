"""What the training loop reports: its metrics between log lines, validation, compilation.

The first two write TensorBoard scalars (`summaries.SummaryWriter`, silent off the chief) and log
one line on process 0: 'step S/N  loss ... nats  ... bits/sample  ... samples/s  ...
steps/s  ETA ...' and 'step S  validation ... bits/sample (... bits per μ-law class)'.
"""
import time
from typing import Any, Callable, Iterator

from absl import logging
import jax
import ml_collections
import numpy as np

from wavenet_jax import evaluation
from wavenet_jax import run_control
from wavenet_jax import summaries

class TrainMetrics:
  """Checks every step's metrics, averages them between log lines, logs and writes them."""

  def __init__(self, writer: summaries.SummaryWriter, train_config: ml_collections.ConfigDict,
               workdir: str, start_step: int, samples_per_step: int):
    self._writer = writer
    self._log_every_steps = train_config.log_every_steps
    self._num_steps = train_config.num_steps
    self._workdir = workdir
    self._samples_per_step = samples_per_step
    self._window: list[dict[str, float]] = []
    self._window_start, self._window_step = time.perf_counter(), start_step

  def record(self, step: int, device_metrics: dict[str, jax.Array], last: bool = False) -> None:
    """Fetches step's metrics (raising TrainingDivergedError on NaN/inf); logs when due."""
    metrics = _to_host(device_metrics)
    run_control.check_finite(step, metrics, self._workdir)
    self._window.append(metrics)
    if step % self._log_every_steps and not last:
      return
    elapsed = time.perf_counter() - self._window_start
    steps_per_s = (step - self._window_step) / max(elapsed, 1e-9)
    summary = {name: float(np.mean([m[name] for m in self._window]))
               for name in ('loss', 'grad_norm', 'learning_rate')}
    summary['bits_per_sample'] = evaluation.nats_to_bits(summary['loss'])
    summary['steps_per_s'] = steps_per_s
    summary['samples_per_s'] = steps_per_s * self._samples_per_step
    self._window.clear()
    self._window_start, self._window_step = time.perf_counter(), step
    for name, value in summary.items():
      self._writer.scalar(f'train/{name}', value, step)
    if jax.process_index() == 0:
      eta_s = (self._num_steps - step) / max(steps_per_s, 1e-9)
      logging.info('step %d/%d  loss %.4f nats  %.4f bits/sample  %.0f samples/s  '
                   '%.2f steps/s  ETA %s', step, self._num_steps, summary['loss'],
                   summary['bits_per_sample'], summary['samples_per_s'], steps_per_s,
                   time.strftime('%H:%M:%S', time.gmtime(eta_s)))


def evaluate(jit_eval_step: Callable[[Any, Any], dict[str, jax.Array]], params: Any,
             batches: Iterator[dict[str, jax.Array]], writer: summaries.SummaryWriter,
             step: int) -> None:
  """Validation over `batches` (all processes take part), written and logged at `step`.

  Args:
    jit_eval_step: `trainer.eval_step` jitted: float32 scalar sums of a global batch.
    batches: global batches of validation crops.
  """
  totals = {'nats_sum': 0.0, 'mulaw_nats_sum': 0.0, 'count': 0.0}
  for batch in batches:
    for name, value in _to_host(jit_eval_step(params, batch)).items():
      totals[name] += value
  count = max(totals['count'], 1.0)
  eval_bits = evaluation.nats_to_bits(totals['nats_sum'] / count)
  mulaw_bits = evaluation.nats_to_bits(totals['mulaw_nats_sum'] / count)
  writer.scalar('eval/bits_per_sample', eval_bits, step)
  writer.scalar('eval/mulaw_bits_per_sample', mulaw_bits, step)
  if jax.process_index() == 0:
    logging.info('step %d  validation %.4f bits/sample (%.4f bits per μ-law class)', step,
                 eval_bits, mulaw_bits)


def _to_host(metrics: dict[str, jax.Array]) -> dict[str, float]:
  return {name: float(value) for name, value in jax.device_get(metrics).items()}


def log_compiled(name: str, compiled: Any, seconds: float) -> None:
  """Logs (process 0) how long `compiled` (a jax.stages.Compiled) took and its memory use."""
  if jax.process_index() != 0:
    return
  memory = compiled.memory_analysis()
  megabytes = lambda size: size / 2**20
  if memory is None:
    logging.info('%s compiled in %.1f s.', name, seconds)
  else:
    logging.info('%s compiled in %.1f s; per device: arguments %.1f MB (%.1f MB donated to the '
                 'outputs), outputs %.1f MB, temporaries %.1f MB, code %.1f MB.', name, seconds,
                 megabytes(memory.argument_size_in_bytes), megabytes(memory.alias_size_in_bytes),
                 megabytes(memory.output_size_in_bytes), megabytes(memory.temp_size_in_bytes),
                 megabytes(memory.generated_code_size_in_bytes))
