"""Generation speed of WaveNet config B1: the cached sampler against naive generation.

B1: 20 layers = 2 stacks of dilations 1..512, kernel 2, residual 64, gate 128, skip 256,
256 classes, random-init parameters (speed does not depend on the values).

Cached: `wavenet_jax.sampler.generate_chunk` (per-layer caches, one jitted lax.scan per
chunk), at each batch size of --batch_sizes, the batch split over `sampler.batch_mesh`:
the most devices that divide it. On a CPU, JAX makes --cpu_devices devices (default one
per core), so a batch of 16 runs as 2 x 8 on a 2-core machine (--cpu_devices=1: one
device, the batch in one sequence of matmuls that XLA threads only where they are large).
With several CPU devices the benchmark also turns XLA:CPU's intra-op threading off
(--xla_cpu_multi_thread_eigen=false): the devices already use every core, and a thread
pool on top oversubscribes them (measured: 7-10 % fewer samples/s at batch 16 and 256).
Pallas (--kernel=xla,pallas): the persistent sampling kernel (`wavenet_jax.pallas_sampler`,
one launch per chunk, one device), timed beside the XLA sampler at each batch size (for the
issue's comparison: --batch_sizes=1,8,16,64). Only on a GPU: elsewhere the kernel runs in
Pallas interpret mode, whose timing is not a speed, and the benchmark refuses it.
Naive: one full forward pass over the last receptive_field (2047) samples per new sample,
the loop jitted as a lax.scan, batch 1.
Compile time is excluded: every measurement runs one warm-up call first, then times
--windows windows of calls (each ending in block_until_ready) of --seconds / --windows
each, and reports the median window's rate (shared machines are noisy; the range is
printed too).

Command:
  python -m experiments.benchmarks.sampling
Hardware: any; the targets were set on a 2-core CPU, where r9y9/wavenet_vocoder's incremental
PyTorch generation makes 280 samples/s at batch 1 and 2,700 at batch 16, and naive generation
about 18 samples/s. Targets there: batch 1 >= 8,000 samples/s, batch 16 >= 30,000, batch 256
>= 50,000 (in total over the batch).
Output: a line per measurement, then as the last line JSON
  {"batch_1": ..., "batch_16": ..., "batch_256": ..., "naive_batch_1": ...}
(samples/s, in total over the batch; one key per --batch_sizes entry; "pallas_batch_N" for the
Pallas kernel; with
--outputs=mulaw_softmax,mixture_of_logistics also "mixture_batch_N": B1 with the 16-bit
mixture head (10 components), timed right after the softmax model at each batch size).
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import json
import os
import statistics
import time
from typing import Any, Callable, Optional

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks import train_step
from wavenet_jax import distributions
from wavenet_jax import sampler
from wavenet_jax.models import WaveNet

# The flags exist only when this file is the program: accelerator.py imports its helpers.
if __name__ == '__main__':
  _BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '16', '256'],
                                   'Batch sizes of cached generation.')
  _CPU_DEVICES = flags.DEFINE_integer(
      'cpu_devices', os.cpu_count(), 'CPU devices JAX makes (on a CPU host; default one per core).')
  _SECONDS = flags.DEFINE_float('seconds', 5.0, 'Timed seconds per measurement (after warm-up).')
  _WINDOWS = flags.DEFINE_integer('windows', 5, 'Timed windows per measurement (median reported).')
  _CHUNK_ROWS = flags.DEFINE_integer(
      'chunk_rows', 8192, 'Samples per timed generate_chunk call, in total over the batch '
      '(chunk length = chunk_rows // batch, at least 16).')
  _NAIVE_STEPS = flags.DEFINE_integer('naive_steps', 8, 'Samples per timed naive call.')
  _TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Sampling temperature (0: greedy).')
  _KERNEL = flags.DEFINE_list(
      'kernel', ['xla'], 'Samplers timed side by side at each batch size (sampler.KERNELS: xla, '
      'pallas; pallas on a GPU only).')
  _OUTPUTS = flags.DEFINE_list(
      'outputs', ['mulaw_softmax'], 'Output heads of B1 to time, each batch size in turn for '
      'all of them (mulaw_softmax, mixture_of_logistics).')


def timed_rate(run: Callable[[], Any], samples_per_call: int, seconds: float,
               windows: int) -> tuple[float, float, float]:
  """(median, min, max) samples/s of `run` over `windows` windows of seconds / windows each.

  One warm-up call (compilation) runs first.
  """
  jax.block_until_ready(run())
  rates = []
  for _ in range(windows):
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds / windows:
      jax.block_until_ready(run())
      calls += 1
    rates.append(calls * samples_per_call / (time.perf_counter() - start))
  return statistics.median(rates), min(rates), max(rates)


def cached_rate(model: WaveNet, variables: Any, batch_size: int, *, chunk_rows: int,
                temperature: float, seconds: float, windows: int,
                global_cond: Optional[np.ndarray] = None,
                kernel: str = 'xla') -> tuple[float, float, float]:
  """Total samples/s (median, min, max) of `sampler.generate_chunk` at this batch size.

  The batch is split over `sampler.batch_mesh(batch_size)` (kernel 'xla'; 'pallas' runs on one
  device); each timed call generates max(16, chunk_rows // batch_size) samples per sequence
  (see `timed_rate` for the windows).

  Args:
    global_cond: int32 speaker ids [batch_size], for speaker-conditioned models.
    kernel: the sampler's, one of sampler.KERNELS.
  """
  chunk_length = max(16, chunk_rows // batch_size)
  state = sampler.init_state(model, variables, batch_size=batch_size,
                             global_cond=(None if global_cond is None
                                          else jnp.asarray(global_cond, jnp.int32)),
                             mesh=sampler.batch_mesh(batch_size) if kernel == 'xla' else None,
                             kernel=kernel)
  rng = jax.random.key(1)

  def run():
    nonlocal state
    state, samples = sampler.generate_chunk(state, rng, chunk_length, temperature)
    return samples

  return timed_rate(run, batch_size * chunk_length, seconds, windows)


def naive_rate(model: WaveNet, variables: Any) -> tuple[float, float, float]:
  """Samples/s at batch 1 of one full forward over the receptive field per new sample."""
  num_steps = _NAIVE_STEPS.value

  @jax.jit
  def generate_steps(window: jax.Array, rng: jax.Array) -> jax.Array:
    """window: int32 [1, receptive_field] -> the window after num_steps new samples."""

    def step(window, uniforms):
      logits = model.apply(variables, window)[:, -1]
      next_sample = model.distribution.sample(logits, jnp.float32(_TEMPERATURE.value), uniforms,
                                              _TEMPERATURE.value == 0)
      return jnp.concatenate([window[:, 1:], next_sample[:, None]], axis=1), None

    uniforms = jax.random.uniform(rng, (num_steps, 1, model.distribution.uniforms_per_sample))
    return jax.lax.scan(step, window, uniforms)[0]

  window = jnp.full((1, model.receptive_field), model.silence_class, jnp.int32)
  rng = jax.random.key(2)

  def run():
    nonlocal window
    window = generate_steps(window, rng)
    return window

  return timed_rate(run, num_steps, _SECONDS.value, _WINDOWS.value)


def main(argv):
  del argv
  try:
    batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  except ValueError:
    raise app.UsageError(f'--batch_sizes must be integers, got {_BATCH_SIZES.value}.')
  if any(b < 1 for b in batch_sizes):
    raise app.UsageError(f'--batch_sizes must be >= 1, got {_BATCH_SIZES.value}.')
  if _CPU_DEVICES.value < 1 or _WINDOWS.value < 1:
    raise app.UsageError('--cpu_devices and --windows must be >= 1.')
  unknown = set(_KERNEL.value) - set(sampler.KERNELS)
  if unknown or not _KERNEL.value:
    raise app.UsageError(f'--kernel must list samplers of {sampler.KERNELS}, got {_KERNEL.value}.')
  jax.config.update('jax_num_cpu_devices', _CPU_DEVICES.value)
  if _CPU_DEVICES.value > 1:
    # Read when the CPU backend starts (below), not at import.
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                               + ' --xla_cpu_multi_thread_eigen=false').strip()
  for output in _OUTPUTS.value:
    try:
      distributions.make(output)
    except ValueError as error:
      raise app.UsageError(f'--outputs: {error}') from None
  if 'pallas' in _KERNEL.value and jax.default_backend() != 'gpu':
    raise app.UsageError(f'--kernel=pallas: on {jax.default_backend()} the kernel runs in Pallas '
                         'interpret mode, whose timing is not a speed; time it on a GPU.')
  models = {output: train_step.b1_model('float32', output) for output in _OUTPUTS.value}
  variables = {output: model.init(jax.random.key(0), jnp.zeros((1, 16), jnp.int32))
               for output, model in models.items()}
  model = models[_OUTPUTS.value[0]]
  print(f'B1: {model.num_layers} layers, receptive field {model.receptive_field}; '
        f'devices {jax.devices()}; temperature {_TEMPERATURE.value}', flush=True)
  results = {}

  def report(key: str, what: str, rates: tuple[float, float, float]) -> None:
    results[key] = rates[0]
    print(f'{what}: {rates[0]:,.1f} samples/s (median of {_WINDOWS.value} windows; '
          f'range {rates[1]:,.1f} - {rates[2]:,.1f})', flush=True)

  for batch_size in batch_sizes:
    for output, model in models.items():
      for kernel in _KERNEL.value:
        devices = sampler.batch_mesh(batch_size).size if kernel == 'xla' else 1
        rates = cached_rate(model, variables[output], batch_size, chunk_rows=_CHUNK_ROWS.value,
                            temperature=_TEMPERATURE.value, seconds=_SECONDS.value,
                            windows=_WINDOWS.value, kernel=kernel)
        prefix = ('' if kernel == 'xla' else f'{kernel}_') + (
            '' if output == 'mulaw_softmax' else 'mixture_')
        report(f'{prefix}batch_{batch_size}', f'{output}: cached generation ({kernel}), batch '
               f'{batch_size} over {devices} device{"s" if devices > 1 else ""}', rates)
  output = _OUTPUTS.value[0]
  report('naive_batch_1', f'{output}: naive generation, batch 1',
         naive_rate(models[output], variables[output]))
  print(json.dumps({key: round(value, 1) for key, value in results.items()}))


if __name__ == '__main__':
  app.run(main)
