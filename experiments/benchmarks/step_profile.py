"""Where the cached step's time goes at batch 1, and what moves it (issue #17 item 6).

B1 (`train_step.b1_model`, random-init float32 parameters), cached generation at temperature 1
through the sampler's own jitted chunk (`sampler._generate_chunk`: models.Decoder.step inside
a lax.scan with the inverse-CDF sampling), at --batch_sizes (batch 1, and a large batch as the
guard that a lever does not slow big batches). Four parts:

  1. census: the compiled chunk's scan body (SCAN_UNROLL steps) per step: XLA:CPU thunks by
     kind (each is one dispatch of the thunk executor), matmul FLOPs and bytes
     (`cost_analysis`), and the time of the step's 42 matmuls alone (the same shapes, chained
     in a scan: arithmetic plus their own dispatch).
  2. trace: the thunks' own time per step by kind from a jax.profiler trace of a fresh process
     with --xla_cpu_enable_xprof_traceme (tracing slows every thunk, so read shares, not times).
  3. code: variants of the step in one process, alternated round by round: scan unroll values
     (`sampler._generate_chunk`'s unroll), decoders overriding part of the step (`VectorDecoder`:
     the batch-1 step on vectors (no batch axis: XLA:CPU then needs no layout copy before
     each matmul; `MatmulHeadDecoder`: the head as plain matmuls), the past-tap matmul
     threshold (`Decoder.batched_past_taps_max_batch`), bfloat16, and
     XLA:CPU's legacy loop emitters (compiler option xla_cpu_use_fusion_emitters=False, set
     on this compilation only).
  4. flags and the plain call: fresh processes (XLA_FLAGS is read when the backend starts),
     alternated round by round: XLA:CPU flags under the library call, and a plain
     `wavenet_jax.generate(...)` with no flags or environment against the sampling
     benchmark's settings (jax_num_cpu_devices = cores, --xla_cpu_multi_thread_eigen=false)
     and against `sampler.use_every_cpu_core()`.
Every variant says whether its samples are bit-identical to the current code's (the same key,
the first chunk from silence at each batch size). Rates: samples/s in total over
the batch, median and range over --rounds windows of --seconds each, after a warm-up call.

Command:
  taskset -c 1 python -m experiments.benchmarks.step_profile
  (parts and variants: --parts=code --variants=unroll_1,vector_step_unroll_1; about 20 minutes
  for everything, most of it compilation and the fresh processes)
Hardware: the 2-core AMD EPYC of issue #17, pinned to core 1 (batch 1 is one core's work; the
batch-256 guard then runs on one core too), with a training job on core 0 and at times tests
on core 1 (load 2-4). Measured there (2026-12-01):
  census, batch 1: 143 thunks per step (42 dots, 40 layout copies [1, C] -> [C, 1] before
    dots, 20 gated units, 18 residual adds, 4 cumsum reduce-windows, ring gather/scatter);
    per step (alternated, same run): generation 63.3 us, its 42 matmuls alone 55.9 us, one
    matmul of the same 1.73 MFLOP and 3.46 MB of float32 weights 45.7 us (76 GB/s): the step
    streams its weights from L3 each sample, so ~72 % of it is that floor, ~16 % the split into
    42 matmuls, ~12 % the ~100 other thunks. Batch 256: 6.9 ms per step, 4.7 ms the one-matmul
    floor (94 GFLOP/s).
  code, batch 1 (7 rounds): current 16,769 samples/s (16,001-17,216); unroll 1 16,881; vector
    step 16,684; vector step + unroll 1 17,329; fusion emitters off + vector step + unroll 1
    18,418 (16,819-18,788); bfloat16 2x slower; unroll 8 / 16 1.4x / 2x slower. Batch 256: all
    float32 variants within 3 % (current 35,319, unroll 1 35,904). Samples bit-identical for
    every float32 variant and flag.
  plain call pinned to one core: the same as the benchmark's settings (13,498 / 13,403).
  Both cores, idle (`--parts=plain,code --variants=eigen_threads_off`, unpinned, after
  SCAN_UNROLL = 1): plain call 13,205 samples/s at batch 1 (11,704-13,680), benchmark settings
  10,741, use_every_cpu_core 11,905; batch 256: 46,501 / 40,583 / 44,435; the per-compilation
  eigen_threads_off 11,936 vs current 12,575 (batch 256: 46,875 vs 46,390): not taken.
Output: a line per measurement, then as the last line JSON
  {"census": {...}, "code": {variant: {batch: [median, min, max], "identical": bool}},
   "flags": {...}, "plain": {...}}.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import dataclasses
import hashlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Optional

from absl import app
from absl import flags
import flax
import jax
import jax.numpy as jnp
import numpy as np

from experiments.benchmarks import train_step
from wavenet_jax import models
from wavenet_jax import sampler
from wavenet_jax.models import WaveNet

if __name__ == '__main__':
  _BATCH_SIZES = flags.DEFINE_list('batch_sizes', ['1', '256'], 'Batch sizes measured.')
  _ROUNDS = flags.DEFINE_integer('rounds', 5, 'Alternation rounds (one window per variant each).')
  _SECONDS = flags.DEFINE_float('seconds', 1.0, 'Timed seconds per window.')
  _CHUNK_ROWS = flags.DEFINE_integer(
      'chunk_rows', 4096, 'Samples per timed chunk in total over the batch (at least 16 per row).')
  _PROCESS_ROUNDS = flags.DEFINE_integer(
      'process_rounds', 3, 'Alternation rounds of the fresh-process parts (one process per '
      'variant each, two windows per process).')
  _PARTS = flags.DEFINE_list('parts', ['census', 'trace', 'code', 'flags', 'plain'],
                             'Parts to run (see the docstring).')
  _VARIANTS = flags.DEFINE_list('variants', [], 'Code variants of part 3 (default: all; '
                                'the current code always runs).')
  _WORKER = flags.DEFINE_string('worker', '', 'Internal: a fresh-process measurement (JSON).')

# XLA_FLAGS variants of part 4, under the library call (the current code).
FLAG_VARIANTS = {
    'default': '',
    'eigen_off': '--xla_cpu_multi_thread_eigen=false',
    'fast_math': '--xla_cpu_enable_fast_math=true',
    'no_fusion_emitters': '--xla_cpu_use_fusion_emitters=false',
}

Rates = tuple[float, float, float]

def b1() -> tuple[WaveNet, Any]:
  model = train_step.b1_model('float32')
  return model, model.init(jax.random.key(0), jnp.zeros((1, 16), jnp.int32))


def chunk_length(batch_size: int, chunk_rows: int) -> int:
  return max(16, chunk_rows // batch_size)


def summary(rates: list[float]) -> Rates:
  return statistics.median(rates), min(rates), max(rates)


def digest(samples: np.ndarray) -> str:
  return hashlib.sha256(np.ascontiguousarray(samples, np.int32).tobytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Step variants (prototypes of levers): decoders that override a part of the library's
# `models.Decoder`, the reference.


@flax.struct.dataclass
class VectorDecoder(models.Decoder):
  """The step at batch 1 on vectors [channels] (no batch axis); mulaw head, no local cond."""

  def step(self, state: models.DecodeState, sample: jax.Array, bias: jax.Array,
           local_feature: Optional[jax.Array]) -> tuple[models.DecodeState, jax.Array]:
    model = self.model
    if sample.shape[0] != 1 or local_feature is not None or model.distribution.value_input:
      return super().step(state, sample, bias, local_feature)
    num_layers = model.num_layers
    read_rows, write_rows = models._ring_rows(model, state.time)  # pylint: disable=protected-access
    past = state.ring[read_rows, 0].reshape(num_layers, -1)  # [L, (k-1) R], oldest tap first.
    z_past = jnp.einsum('lr,lrg->lg', past, self.past_kernels) + bias[:, 0]
    h = self.embedding[sample[0]]
    z = z_past[0] + self.input_table[sample[0]]
    layer_inputs, gate_outputs = [], []
    for l in range(num_layers):
      if l > 0:
        z = z_past[l] + h @ self.current_kernels[l - 1]
      gate_out = models.gated_unit(z)
      layer_inputs.append(h)
      gate_outputs.append(gate_out)
      if l < num_layers - 1:
        h = (gate_out @ self.residual_kernels[l] + self.residual_biases[l]) + h
    ring = state.ring.at[write_rows, 0].set(jnp.stack(layer_inputs))
    skips = jnp.concatenate(gate_outputs) @ self.skip_kernel + self.skip_bias
    return models.DecodeState(ring=ring, time=state.time + 1), self.head(skips)[None]


@flax.struct.dataclass
class MatmulHeadDecoder(models.Decoder):
  """The step with the output head as plain matmuls instead of model.apply."""

  def head(self, skips: jax.Array) -> jax.Array:
    params = self.variables['params']
    hidden = jnp.maximum(jnp.maximum(skips, 0) @ params['head_hidden']['kernel']
                         + params['head_hidden']['bias'], 0)
    return hidden @ params['head_out']['kernel'] + params['head_out']['bias']


def compile_chunk(model: WaveNet, state: sampler.SamplerState, num_samples: int, *,
                  decoder_class: type[models.Decoder] = models.Decoder,
                  unroll: int = sampler.SCAN_UNROLL, past_max_batch: Optional[int] = None,
                  compiler_options: Optional[dict[str, Any]] = None
                  ) -> Callable[[sampler.SamplerState], tuple[sampler.SamplerState, jax.Array]]:
  """The sampler's jitted chunk traced with these settings: state -> (state, samples [B, n]).

  decoder_class: the step (a variant above); past_max_batch: its batched_past_taps_max_batch
  (None: the library's); compiler_options: XLA options of this compilation only (like
  XLA_FLAGS, but per call).
  """
  del model  # The state's decoder holds it.
  fields = {field.name: getattr(state.decoder, field.name)
            for field in dataclasses.fields(state.decoder)}
  if past_max_batch is not None:
    fields['batched_past_taps_max_batch'] = past_max_batch
  decoder = decoder_class(**fields)
  chunk = sampler._generate_chunk.__wrapped__  # pylint: disable=protected-access
  jitted = jax.jit(lambda decoder, *args: chunk(decoder, *args, num_samples, False, unroll),
                   donate_argnums=2)
  keys = sampler.row_keys(jax.random.key(1), state.batch_size)
  executable = jitted.lower(decoder, state.conditioning, state.cache, keys,
                            jnp.float32(1.0)).compile(compiler_options)

  def run(state: sampler.SamplerState) -> tuple[sampler.SamplerState, jax.Array]:
    cache, samples = executable(decoder, state.conditioning, state.cache, keys, jnp.float32(1.0))
    return state.replace(cache=cache), samples

  return run


def reference_samples(model: WaveNet, variables: Any, batch_size: int, num_samples: int) -> str:
  """Digest of the current library's samples (key 1, from silence)."""
  state = sampler.init_state(model, variables, batch_size=batch_size)
  return digest(np.asarray(sampler.generate_chunk(state, jax.random.key(1), num_samples)[1]))


# ---------------------------------------------------------------------------
# Part 1: census of the compiled scan body.


def scan_body_ops(hlo: str) -> collections.Counter:
  """Instructions of the generation scan's body computation by kind (fusions by name)."""
  name = next(re.search(r'body=%?([\w.\-]+)', line).group(1) for line in hlo.splitlines()
              if ' while(' in line and re.search(r'op_name="jit\(\w+\)/while"', line))
  start = hlo.index(f'%{name} ')
  lines = hlo[start:hlo.index('\n}\n', start)].splitlines()[1:]
  ops = collections.Counter()
  for line in lines:
    match = re.match(r'\s+(?:ROOT )?%([\w\-.]+) = .*? ([a-z\-]+)\(', line)
    if not match or match.group(2) in ('parameter', 'get-tuple-element', 'tuple', 'bitcast',
                                        'constant'):
      continue
    kind = match.group(2)
    if kind == 'fusion':
      kind = re.sub(r'\.\d+$', '', match.group(1))
    ops[kind] += 1
  return ops


def scan_of(body: Callable[[jax.Array], jax.Array], steps: int) -> Callable[[jax.Array], Any]:
  """body iterated `steps` times in a jitted lax.scan (unroll 4, as the sampler's)."""
  return jax.jit(lambda c: jax.lax.scan(lambda c, _: (body(c), None), c, None, length=steps,
                                        unroll=4)[0])


def matmul_bodies(model: WaveNet) -> dict[str, Callable[[jax.Array], jax.Array]]:
  """Scan bodies h [batch, residual] -> h: the step's 42 matmuls alone (B1 shapes, chained),
  and one matmul of the same FLOPs and weight bytes ([batch, residual] @ [residual, n])."""
  residual, gate, skip = model.residual_channels, model.gate_channels, model.skip_channels
  half, layers = gate // 2, model.num_layers
  keys = iter(jax.random.split(jax.random.key(0), 8))
  past = jax.random.normal(next(keys), (layers, residual, gate)) * 0.1
  current = list(jax.random.normal(next(keys), (layers - 1, residual, gate)) * 0.1)
  res = list(jax.random.normal(next(keys), (layers - 1, half, residual)) * 0.1)
  skip_kernel = jax.random.normal(next(keys), (layers * half, skip)) * 0.05
  hidden = jax.random.normal(next(keys), (skip, skip)) * 0.05
  out = jax.random.normal(next(keys), (skip, model.num_classes)) * 0.05

  def step_matmuls(h):
    z_past = jnp.einsum('lbr,lrg->lbg', jnp.broadcast_to(h, (layers,) + h.shape), past)
    gates = []
    for l in range(layers):
      z = z_past[l] if l == 0 else z_past[l] + h @ current[l - 1]
      gates.append(z[:, :half])
      if l < layers - 1:
        h = z[:, half:] @ res[l]
    logits = (jnp.concatenate(gates, axis=1) @ skip_kernel) @ hidden @ out
    return h + logits[:, :residual]

  columns = train_step.forward_matmul_flops(model, 1) // (2 * residual)
  wide = jax.random.normal(next(keys), (residual, columns)) * 0.01
  return {'step_matmuls': step_matmuls,
          'one_matmul': lambda h: h + (h @ wide)[:, :residual]}


def census(model: WaveNet, variables: Any, batch_size: int, chunk_rows: int, rounds: int,
           seconds: float) -> dict[str, Any]:
  """Part 1 at one batch size; the step, its matmuls alone and one matmul timed alternately."""
  num_samples = chunk_length(batch_size, chunk_rows)
  state = sampler.init_state(model, variables, batch_size=batch_size)
  keys = sampler.row_keys(jax.random.key(1), batch_size)
  compiled = sampler._generate_chunk.lower(  # pylint: disable=protected-access
      state.decoder, state.conditioning, state.cache, keys, jnp.float32(1.0),
      num_samples=num_samples, greedy=False).compile()
  unroll = sampler.SCAN_UNROLL
  per_step = {kind: count / unroll
              for kind, count in scan_body_ops(compiled.as_text()).most_common()}
  cost = compiled.cost_analysis()  # Of the whole chunk: XLA counts a while body once.
  weight_bytes = train_step.forward_matmul_flops(model, 1) * 2  # float32, read once per step.
  flops = train_step.forward_matmul_flops(model, 1) * batch_size
  chunk = compile_chunk(model, state, num_samples)
  holder = {'state': state, 'h': jnp.ones((batch_size, model.residual_channels))}

  def generation():
    holder['state'], samples = chunk(holder['state'])
    return samples

  runs, rows = {'generation': generation}, {'generation': batch_size * num_samples}
  for name, body in matmul_bodies(model).items():
    scan = scan_of(body, num_samples)

    def run(scan=scan):
      holder['h'] = scan(holder['h'])
      return holder['h']

    runs[name], rows[name] = run, batch_size * num_samples
  us = {name: 1e6 * batch_size / rates[0]
        for name, rates in alternate(runs, rows, rounds, seconds).items()}
  result = {'thunks_per_step': sum(per_step.values()), 'thunks_by_kind': per_step,
            'matmul_flops_per_step': flops, 'weight_bytes_per_step': weight_bytes,
            'xla_flops_per_scan_body': cost.get('flops'),
            'xla_bytes_per_scan_body': cost.get('bytes accessed'),
            'us_per_step': us}
  print(f'census, batch {batch_size}: {sum(per_step.values()):.0f} thunks per step (scan '
        f'unroll {unroll}): {json.dumps(per_step)}; {flops / 1e6:.2f} MFLOP of matmuls and '
        f'{weight_bytes / 1e6:.2f} MB of weights per step; us per step (medians of {rounds} '
        f'alternated windows): generation {us["generation"]:.1f}, its 42 matmuls alone '
        f'{us["step_matmuls"]:.1f} ({flops / us["step_matmuls"] / 1e3:.1f} GFLOP/s), one '
        f'matmul of those FLOPs and bytes {us["one_matmul"]:.1f} '
        f'({flops / us["one_matmul"] / 1e3:.1f} GFLOP/s)', flush=True)
  return result


# ---------------------------------------------------------------------------
# Part 2: a traced run (fresh process) and its thunk times.


def traced_thunks(model: WaveNet, variables: Any, batch_size: int, chunk_rows: int) -> dict:
  """Per-step time and count of the executed thunks by kind, from a jax.profiler trace."""
  num_samples = chunk_length(batch_size, chunk_rows)
  state = sampler.init_state(model, variables, batch_size=batch_size)
  rng = jax.random.key(1)
  state, samples = sampler.generate_chunk(state, rng, num_samples)
  jax.block_until_ready(samples)
  calls = 4
  with tempfile.TemporaryDirectory() as log_dir:
    jax.profiler.start_trace(log_dir)
    start = time.perf_counter()
    for _ in range(calls):
      state, samples = sampler.generate_chunk(state, rng, num_samples)
      jax.block_until_ready(samples)
    wall = time.perf_counter() - start
    jax.profiler.stop_trace()
    path = next(os.path.join(root, name) for root, _, names in os.walk(log_dir)
                for name in names if name.endswith('.xplane.pb'))
    profile = jax.profiler.ProfileData.from_file(path)
  steps = calls * num_samples
  times, counts = collections.Counter(), collections.Counter()
  for plane in profile.planes:
    for line in plane.lines:
      if not line.name.startswith('tf_XLA'):
        continue
      for event in line.events:
        name = event.name
        if name.startswith(('ThunkExecutor', 'ThreadpoolListener', 'end: ', 'while')):
          continue
        kind = re.sub(r'[.\d]+$', '', name)
        kind = 'fusion (elementwise)' if 'fusion' in kind and kind != 'ynn_fusion' else kind
        times[kind] += event.duration_ns
        counts[kind] += 1
  return {'traced_us_per_step': wall / steps * 1e6,
          'thunk_us_per_step': {k: v / steps / 1e3 for k, v in times.most_common()},
          'thunks_per_step': {k: counts[k] / steps for k, _ in times.most_common()}}


# ---------------------------------------------------------------------------
# Measurement harness.


def alternate(runs: dict[str, Callable[[], Any]], samples_per_call: dict[str, int], rounds: int,
              seconds: float) -> dict[str, Rates]:
  """Rates of each run, one window per run per round, runs in turn (shared conditions)."""
  for run in runs.values():
    jax.block_until_ready(run())
  rates = {name: [] for name in runs}
  for _ in range(rounds):
    for name, run in runs.items():
      calls, start = 0, time.perf_counter()
      while time.perf_counter() - start < seconds:
        jax.block_until_ready(run())
        calls += 1
      rates[name].append(calls * samples_per_call[name] / (time.perf_counter() - start))
  return {name: summary(r) for name, r in rates.items()}


def code_variants(batch_size: int) -> dict[str, dict[str, Any]]:
  variants = {'current': {}}
  variants.update({f'unroll_{u}': {'unroll': u} for u in (1, 2, 8, 16)})
  if batch_size == 1:
    variants['vector_step'] = {'decoder_class': VectorDecoder}
    variants['vector_step_unroll_1'] = {'decoder_class': VectorDecoder, 'unroll': 1}
    variants['vector_step_unroll_2'] = {'decoder_class': VectorDecoder, 'unroll': 2}
    variants['past_per_layer'] = {'past_max_batch': 0}
  else:
    variants['past_batched'] = {'past_max_batch': batch_size}
  variants['matmul_head'] = {'decoder_class': MatmulHeadDecoder}
  no_emitters = {'compiler_options': {'xla_cpu_use_fusion_emitters': False}}
  variants['fusion_emitters_off'] = no_emitters
  # Matters only where XLA's intra-op pool has several threads (run without taskset).
  variants['eigen_threads_off'] = {'compiler_options': {'xla_cpu_multi_thread_eigen': False}}
  variants['fusion_emitters_off_unroll_1'] = {**no_emitters, 'unroll': 1}
  if batch_size == 1:
    variants['fusion_emitters_off_vector_unroll_1'] = {**no_emitters, 'unroll': 1,
                                                       'decoder_class': VectorDecoder}
  variants['bfloat16'] = {'dtype': 'bfloat16'}
  return variants


def code_part(batch_sizes: list[int], chunk_rows: int, rounds: int, seconds: float,
              chosen: list[str]) -> dict[str, Any]:
  """Part 3: every code variant at every batch size, alternated in this process."""
  float32 = b1()
  models_by_dtype = {'float32': float32, 'bfloat16': (train_step.b1_model('bfloat16'),
                                                      float32[1])}
  results = collections.defaultdict(dict)
  for batch_size in batch_sizes:
    num_samples = chunk_length(batch_size, chunk_rows)
    reference = reference_samples(*float32, batch_size, num_samples)
    runs, rows = {}, {}
    for name, options in code_variants(batch_size).items():
      if chosen and name != 'current' and name not in chosen:
        continue
      options = dict(options)
      model, variables = models_by_dtype[options.pop('dtype', 'float32')]
      holder = {'state': sampler.init_state(model, variables, batch_size=batch_size)}
      chunk = compile_chunk(model, holder['state'], num_samples, **options)
      holder['state'], samples = chunk(holder['state'])  # From silence: the check.
      identical = digest(np.asarray(samples)) == reference
      results[name]['identical'] = results[name].get('identical', True) and identical

      def run(chunk=chunk, holder=holder):
        holder['state'], samples = chunk(holder['state'])
        return samples

      runs[name], rows[name] = run, batch_size * num_samples
    for name, rates in alternate(runs, rows, rounds, seconds).items():
      results[name][f'batch_{batch_size}'] = rates
      print(f'code {name:22s} batch {batch_size:4d}: {rates[0]:9,.0f} samples/s '
            f'(range {rates[1]:,.0f} - {rates[2]:,.0f}; {1e6 * batch_size / rates[0]:6.1f} us '
            f'per step); samples identical: {results[name]["identical"]}', flush=True)
  return dict(results)


# ---------------------------------------------------------------------------
# Fresh-process workers (parts 2 and 4).


def worker(spec: dict[str, Any]) -> dict[str, Any]:
  """Runs in a fresh process; spec: mode, batch_sizes, windows, seconds, chunk_rows, ..."""
  if spec['mode'] == 'benchmark_settings':
    jax.config.update('jax_num_cpu_devices', os.cpu_count())
  elif spec['mode'] == 'use_every_cpu_core':
    sampler.use_every_cpu_core()
  model, variables = b1()
  if spec['mode'] == 'trace':
    return {f'batch_{b}': traced_thunks(model, variables, b, spec['chunk_rows'])
            for b in spec['batch_sizes']}
  result = {'devices': len(jax.devices())}
  for batch_size in spec['batch_sizes']:
    num_samples = chunk_length(batch_size, spec['chunk_rows'])
    if spec['mode'] == 'library':
      check = reference_samples(model, variables, batch_size, num_samples)
      state = sampler.init_state(model, variables, batch_size=batch_size)

      def run():
        nonlocal state
        state, samples = sampler.generate_chunk(state, jax.random.key(1), num_samples)
        return samples
    else:  # The plain library call, whole (init_state and chunk) each time.
      import wavenet_jax  # pylint: disable=g-import-not-at-top
      check = digest(np.asarray(wavenet_jax.generate(
          model, variables, jax.random.key(1), num_samples=num_samples, batch_size=batch_size)))

      def run():
        return wavenet_jax.generate(model, variables, jax.random.key(1),
                                    num_samples=num_samples, batch_size=batch_size)
    jax.block_until_ready(run())
    rates = []
    for _ in range(spec['windows']):
      calls, start = 0, time.perf_counter()
      while time.perf_counter() - start < spec['seconds']:
        jax.block_until_ready(run())
        calls += 1
      rates.append(calls * batch_size * num_samples / (time.perf_counter() - start))
    result[f'batch_{batch_size}'] = {'rates': rates, 'digest': check}
  return result


def spawn(spec: dict[str, Any], xla_flags: Optional[str]) -> dict[str, Any]:
  """Runs `worker(spec)` in a fresh process; xla_flags None: no XLA or JAX environment at all."""
  env = {k: v for k, v in os.environ.items() if not k.startswith(('XLA_', 'JAX_'))}
  if xla_flags:
    env['XLA_FLAGS'] = xla_flags
  output = subprocess.run(
      [sys.executable, '-m', 'experiments.benchmarks.step_profile', f'--worker={json.dumps(spec)}'],
      env=env, check=True, capture_output=True, text=True).stdout
  return json.loads(output.strip().splitlines()[-1])


def fresh_process_part(variants: dict[str, tuple[str, Optional[str]]], batch_sizes: list[int],
                       chunk_rows: int, rounds: int, seconds: float,
                       label: str) -> dict[str, Any]:
  """variants: name -> (worker mode, XLA_FLAGS); one process per variant per round, in turn."""
  rates = collections.defaultdict(lambda: collections.defaultdict(list))
  digests, devices = collections.defaultdict(dict), {}
  for _ in range(rounds):
    for name, (mode, xla_flags) in variants.items():
      spec = dict(mode=mode, batch_sizes=batch_sizes, windows=2, seconds=seconds,
                  chunk_rows=chunk_rows)
      result = spawn(spec, xla_flags)
      devices[name] = result['devices']
      for batch_size in batch_sizes:
        rates[name][batch_size] += result[f'batch_{batch_size}']['rates']
        digests[name][batch_size] = result[f'batch_{batch_size}']['digest']
  first = next(iter(variants))
  results = {}
  for name in variants:
    results[name] = {'devices': devices[name],
                     'identical': all(digests[name][b] == digests[first][b] for b in batch_sizes)}
    for batch_size in batch_sizes:
      median, low, high = summary(rates[name][batch_size])
      results[name][f'batch_{batch_size}'] = (median, low, high)
      print(f'{label} {name:20s} batch {batch_size:4d}: {median:9,.0f} samples/s (range '
            f'{low:,.0f} - {high:,.0f}; {2 * rounds} windows in {rounds} processes); samples '
            f'identical to {first}: {results[name]["identical"]}', flush=True)
  return results


def main(argv):
  del argv
  if _WORKER.value:
    print(json.dumps(worker(json.loads(_WORKER.value))))
    return
  batch_sizes = [int(b) for b in _BATCH_SIZES.value]
  rounds, seconds, chunk_rows = _ROUNDS.value, _SECONDS.value, _CHUNK_ROWS.value
  print(f'load (uptime): {os.getloadavg()}; cores this process may use: '
        f'{sorted(os.sched_getaffinity(0))}; jax {jax.__version__}', flush=True)
  results = {}
  if 'census' in _PARTS.value:
    model, variables = b1()
    results['census'] = {f'batch_{b}': census(model, variables, b, chunk_rows, rounds, seconds)
                         for b in batch_sizes}
  if 'trace' in _PARTS.value:
    traced = spawn(dict(mode='trace', batch_sizes=batch_sizes, chunk_rows=chunk_rows),
                   '--xla_cpu_enable_xprof_traceme=true')
    for key, trace in traced.items():
      shown = {kind: (round(us, 2), round(trace['thunks_per_step'][kind], 2))
               for kind, us in trace['thunk_us_per_step'].items() if us > 0.5}
      print(f'trace, {key}: {trace["traced_us_per_step"]:.0f} us per step while traced; kind: '
            f'(thunk us, thunks) per step {json.dumps(shown)}', flush=True)
    results['trace'] = traced
  if 'code' in _PARTS.value:
    results['code'] = code_part(batch_sizes, chunk_rows, rounds, seconds, _VARIANTS.value)
  if 'flags' in _PARTS.value:
    results['flags'] = fresh_process_part(
        {name: ('library', value) for name, value in FLAG_VARIANTS.items()}, batch_sizes,
        chunk_rows, _PROCESS_ROUNDS.value, seconds, 'flags')
  if 'plain' in _PARTS.value:
    results['plain'] = fresh_process_part(
        {'plain_call': ('plain', None),
         'benchmark_settings': ('benchmark_settings', '--xla_cpu_multi_thread_eigen=false'),
         'use_every_cpu_core': ('use_every_cpu_core', None)},
        batch_sizes, chunk_rows, _PROCESS_ROUNDS.value, seconds, 'plain')
  print(json.dumps(results))


if __name__ == '__main__':
  app.run(main)
