"""Training throughput of WaveNet config B1 on this machine, next to its matmul peak.

B1: 20 layers = 2 stacks of dilations 1..512, kernel 2, residual 64, gate 128, skip 256,
256 classes; batch 4 x 8000 samples. One step = the trainer's jitted train_step (forward,
backward, global-norm clipping, AdamW) on a random batch.

Command:
  python -m experiments.benchmarks.train_step
Hardware: any; the targets were set on a 2-core CPU (the reference figures there: PyTorch
r9y9/wavenet_vocoder ~15,000 samples/s, matmul peak ~165 GFLOP/s).
The benchmark calls `wavenet_jax.host_memory.retain_freed_host_memory()` before anything
starts threads (glibc then keeps XLA's per-step temporary buffer instead of page-faulting
it in anew every step); the progress line reports the minor page faults per step.
Output: a progress line per measurement, then as the last line JSON
  {"samples_per_s": ..., "gflops": ..., "peak_gflops": ...}
where gflops = the step's matmul FLOPs (3 x the forward's: forward, and two backward matmuls
per forward matmul) / step time, and peak_gflops = a large float32 matmul measured in the
same run.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
from wavenet_jax import host_memory

# Before JAX, TensorFlow or orbax start threads (see host_memory).
HOST_MEMORY_RETAINED = host_memory.retain_freed_host_memory()

import json  # pylint: disable=g-import-not-at-top,wrong-import-position
import resource
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from wavenet_jax import optimizers
from wavenet_jax import trainer
from wavenet_jax.models import WaveNet

# The flags exist only when this file is the program: accelerator.py imports its helpers.
if __name__ == '__main__':
  _BATCH_SIZE = flags.DEFINE_integer('batch_size', 4, 'Sequences per step.')
  _NUM_SAMPLES = flags.DEFINE_integer('num_samples', 8000, 'Samples per sequence.')
  _STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps (after one compile + warm-up step).')
  _DTYPE = flags.DEFINE_enum('dtype', 'float32', ['float32', 'bfloat16'], 'Compute dtype.')
  _MATMUL_SIZE = flags.DEFINE_integer('matmul_size', 2048, 'Side of the peak-matmul probe.')


def b1_model(dtype: str, output: str = 'mulaw_softmax') -> WaveNet:
  """B1 (the benchmarks' model); output 'mixture_of_logistics': 10 components, 16-bit."""
  return WaveNet(num_layers=20, num_stacks=2, kernel_size=2, residual_channels=64,
                 gate_channels=128, skip_channels=256, output=output, dtype=jnp.dtype(dtype))


def forward_matmul_flops(model: WaveNet, num_positions: int) -> int:
  """Multiply-add FLOPs (x2) of the forward pass's matmuls over num_positions positions."""
  half_gate = model.gate_channels // 2
  per_position = 0
  for layer in range(model.num_layers):
    per_position += model.kernel_size * model.residual_channels * model.gate_channels
    if layer < model.num_layers - 1:
      per_position += half_gate * model.residual_channels
  per_position += model.num_layers * half_gate * model.skip_channels
  per_position += model.skip_channels * model.skip_channels
  per_position += model.skip_channels * model.output_size
  return 2 * per_position * num_positions


def matmul_peak_gflops(size: int, dtype: str = 'float32', repeats: int = 10) -> float:
  """Best [size, size] @ [size, size] rate in `dtype` over `repeats` runs, in GFLOP/s.

  On the default device, at jax_default_matmul_precision (which sets how float32 multiplies).
  """
  keys = jax.random.split(jax.random.key(0), 2)
  a = jax.random.normal(keys[0], (size, size), jnp.dtype(dtype))
  b = jax.random.normal(keys[1], (size, size), jnp.dtype(dtype))
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best / 1e9


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  model = b1_model(_DTYPE.value)
  train_config = ml_collections.ConfigDict(dict(
      learning_rate=1e-3, warmup_steps=0, decay='constant', num_steps=1, weight_decay=0.0,
      grad_clip_norm=1.0))
  optimizer = optimizers.create_optimizer(train_config)
  learning_rate_fn = optimizers.create_learning_rate_fn(train_config)
  state = jax.jit(lambda key: nn.unbox(trainer.init_train_state(key, model, optimizer, False)))(
      jax.random.key(0))
  shape = (_BATCH_SIZE.value, _NUM_SAMPLES.value)
  batch = {'audio': jax.random.randint(jax.random.key(1), shape, 0, model.num_classes),
           'mask': jnp.ones(shape, jnp.float32)}
  step = trainer.make_train_step(model, optimizer, learning_rate_fn, ema_decay=0.0)
  start = time.perf_counter()
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  print(f'compile + first step: {time.perf_counter() - start:.1f} s', flush=True)
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  times = []
  faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for _ in range(_STEPS.value):
    start = time.perf_counter()
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  faults_per_step = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                     - faults_before) / _STEPS.value
  step_time = float(np.median(times))
  samples_per_s = shape[0] * shape[1] / step_time
  gflops = 3 * forward_matmul_flops(model, shape[0] * shape[1]) / step_time / 1e9
  peak_gflops = matmul_peak_gflops(_MATMUL_SIZE.value)
  print(f'B1 {_DTYPE.value}: median step {step_time * 1e3:.0f} ms (min {min(times) * 1e3:.0f}) '
        f'= {samples_per_s:,.0f} samples/s, {gflops:.1f} GFLOP/s of matmul; '
        f'matmul peak {peak_gflops:.1f} GFLOP/s; {faults_per_step:,.0f} minor page faults '
        f'per step (freed host memory retained: {HOST_MEMORY_RETAINED})', flush=True)
  print(json.dumps({'samples_per_s': round(samples_per_s, 1), 'gflops': round(gflops, 2),
                    'peak_gflops': round(peak_gflops, 2)}))


if __name__ == '__main__':
  app.run(main)
