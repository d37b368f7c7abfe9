"""A persistent Pallas sampling kernel: one launch generates a chunk of samples (issue 27).

The XLA sampler (`sampler.py`) runs one `lax.scan` step per sample; on a GPU each step is
a series of small kernels launched from the host, so one sequence is latency-bound. Here
one kernel launch generates a whole chunk of T samples for each tile of the batch, the
time loop inside the kernel. Per sample and layer it reads the dilated taps from the ring
buffer (the `models.DecodeState` layout), applies the gate, tanh·σ, the residual, writes
the layer input back to the ring; then the skip sum, the output head and the draw from
uniforms drawn before the launch: the uniforms of the XLA sampler (keyed by position,
`sampler._noise_block`), so both draw the same samples.

Conditioning: the per-layer gate bias (`Decoder.gate_bias`) already holds the speaker's
term; local features are upsampled for the chunk before the launch, one frame at a time
with the model's upsampler as the XLA sampler does, and projected inside the kernel.

One kernel source, two sets of memory and matrix operations (`_InterpretOps`, `_GpuOps`):
- Pallas interpret mode (`interpret=True`, how it runs off a GPU; a `pl.pallas_call`): the
  XLA sampler's jnp operations (one dot over each whole contraction, gathers, cumsum), so
  it draws exactly the XLA sampler's samples (the tests check it).
- Mosaic GPU (`interpret=False`; a `pl.kernel` on a `plgpu.Mesh`, as jax 0.11 lowers no
  Mosaic GPU pallas_call; the ring is a mutable Ref, updated in place): every array stays
  in GMEM (B1's weights, 1.7 MB in bf16, do not fit one SM's 227 KiB of shared memory);
  each matmul streams its weights through one 64 x 64 bf16 SMEM tile by TMA and multiplies
  with wgmma (f32 accumulation; the activations are cast to bf16), the batch tile is 64
  rows (wgmma's M; a smaller batch is padded), the skip sum accumulates layer by layer in
  SMEM, the embedding lookup is a one-hot matmul and the inverse-CDF draw's cumulative sum
  a triangular matmul in two bf16 terms (about 16 bits of the f32 sum). The residual,
  gate/2 and skip widths must be multiples of GPU_TILE (one-line ValueError otherwise);
  classes and local channels are padded. Its lowering runs on a CPU host (`jax.export(...,
  platforms=['cuda'])`, tested, B1's widths included); it has not run on a GPU yet, so
  neither its speed nor its samples there (bf16 weights: close to, not equal to, the XLA
  sampler's) are measured, and `kernel='xla'` stays the default. Not yet done:
  double-buffered weight tiles (each tile is awaited before its wgmma).
"""
import functools
import inspect
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from wavenet_jax import distributions
from wavenet_jax import models
from wavenet_jax import sampler
from wavenet_jax.models import Decoder, WaveNet

Array = jax.Array

# Mosaic GPU's tile: wgmma's M (the batch tile) and the 64 x 64 weight tiles (128-byte rows of
# bf16, the swizzle TMA and wgmma share).
GPU_TILE = 64
# Sequences per kernel instance in interpret mode (a grid step); a smaller batch is one tile.
BATCH_TILE = 8
# SMEM layouts wgmma and bank-conflict-free loads need: 128-byte swizzled rows of 8-row tiles.
_BF16_SMEM = (plgpu.TilingTransform((8, 64)), plgpu.SwizzleTransform(128))
_F32_SMEM = (plgpu.TilingTransform((8, 32)), plgpu.SwizzleTransform(128))
# jax 0.10's plgpu.load has no default index.
_LOAD_TAKES_INDEX = (inspect.signature(plgpu.load).parameters['idx'].default
                     is inspect.Parameter.empty)
# The name of the GPU kernel's grid axis (its batch tiles).
_TILE_AXIS = 'batch_tile'


def check_tiling(model: WaveNet, tile: int = GPU_TILE) -> None:
  """One-line ValueError unless the residual, gate/2 and skip widths are multiples of `tile`."""
  widths = {'residual_channels': model.residual_channels,
            'gate_channels / 2': model.gate_channels // 2, 'skip_channels': model.skip_channels}
  bad = {name: width for name, width in widths.items() if width % tile}
  if tile < 1 or bad:
    raise ValueError(f'the Pallas sampler on a GPU needs widths that are multiples of {tile} '
                     f'(its tile), got {bad or widths}.')


def _batch_tile(batch_size: int, batch_tile: Optional[int], interpret: bool) -> int:
  """The batch tile: GPU_TILE on a GPU, else `batch_tile` (dividing the batch) or <= BATCH_TILE."""
  if not interpret:
    return GPU_TILE
  tile = min(batch_size, BATCH_TILE) if batch_tile is None else batch_tile
  if tile < 1 or batch_size % tile:
    raise ValueError(f'batch_tile={tile} must divide the batch size {batch_size}.')
  return tile


def _broadcast_rows(vector: Array, shape: tuple[int, int]) -> Array:
  """[rows] -> [rows, columns]: one value per row (explicit: Mosaic GPU lowers no reshape)."""
  return lax.broadcast_in_dim(vector, shape, (0,))


def _broadcast_columns(vector: Array, shape: tuple[int, int]) -> Array:
  """[columns] -> [rows, columns]: the same row in every row."""
  return lax.broadcast_in_dim(vector, shape, (1,))


class _InterpretOps:
  """The kernel's memory and matrix operations in interpret mode: the XLA sampler's ones."""

  def __init__(self, rows: pl.Slice):
    self.rows = rows  # This instance's batch rows.
    self._skip_parts: list[Array] = []

  def read(self, ref: Any) -> Array:
    """This tile's rows of a per-sequence ref [batch, N] -> [tile, N] (or [batch] -> [tile])."""
    return ref[self.rows]

  def vector(self, ref: Any) -> Array:
    """A weight vector ref [N] -> [N]."""
    return ref[...]

  def write(self, ref: Any, value: Array) -> None:
    """Writes this tile's rows of a per-sequence ref [batch, ...]."""
    ref[self.rows] = value

  def matmul(self, parts: Sequence[Array], kernel: Any) -> Array:
    """concat(parts) [tile, K] @ kernel [K, N], in the model's dtype: one dot, as XLA's."""
    return jnp.concatenate(parts, axis=-1) @ kernel[...]

  def lookup(self, table: Any, classes: Array) -> Array:
    """table [classes, N] rows of int32 classes [tile]."""
    return table[...][classes]

  def iota(self, shape: tuple[int, int]) -> Array:
    """int32 column indices [tile, N]."""
    return lax.broadcasted_iota(jnp.int32, shape, 1)

  def cumsum(self, x: Array) -> tuple[Array, Array]:
    """(cumulative sums along the columns, the row totals [tile]) of x >= 0 [tile, N]."""
    cdf = jnp.cumsum(x, axis=-1)
    return cdf, cdf[:, -1]

  def skip_add(self, layer: int, gate_out: Array, skip_kernel: Any) -> None:
    """Adds layer `layer`'s gate output [tile, G/2] to the skip sum (summed in `skip_sum`)."""
    del layer, skip_kernel
    self._skip_parts.append(gate_out)

  def skip_sum(self, skip_kernel: Any) -> Array:
    """concat(gate outputs) @ skip_kernel [L G/2, S]: one dot, as XLA's."""
    parts, self._skip_parts = self._skip_parts, []
    return self.matmul(parts, skip_kernel)


class _GpuOps:
  """The kernel's memory and matrix operations on Mosaic GPU (see the module docstring).

  Scratch (SMEM, `_gpu_scratch`): `stage` one bf16 weight tile [64, 64]; `product` f32
  [64, widest matmul] (the product's column tiles, read back whole); `skip` f32 [64, skip]
  (the skip sum); one [64, width] buffer per width and dtype of the per-row inputs (the
  ring's rows, gate biases, local features: `_rows_buffer`); `vector` f32 [widest weight
  vector]; `row_vector` f32 [64]; `samples` int32 [64]; `barrier` (TMA's).
  """

  def __init__(self, rows: pl.Slice, dtype: Any, scratch: dict[str, Any], triangle: Any):
    self.rows, self.dtype, self.scratch = rows, dtype, scratch
    self.triangle = triangle  # GMEM bf16 [classes, classes], 1 where row <= column.

  def _fetch(self, src: Any, dst: Any) -> None:
    """src (GMEM) -> dst (SMEM) by TMA, awaited."""
    # One thread issues the copy: first every warp must be done reading dst (and `product`,
    # which each matmul rewrites after its first fetch).
    plgpu.commit_smem()
    plgpu.copy_gmem_to_smem(src, dst, self.scratch['barrier'].at[0])
    plgpu.barrier_wait(self.scratch['barrier'].at[0])

  def read(self, ref: Any) -> Array:
    if len(ref.shape) == 1:  # [batch]: this tile's values, one per row.
      buffer = self.scratch['samples' if ref.dtype == jnp.int32 else 'row_vector']
      self._fetch(ref.at[self.rows], buffer)
      return _load(buffer, plgpu.Layout.WGMMA.reduce(1))
    buffer = self.scratch[_rows_buffer(ref.shape[-1], ref.dtype)]
    self._fetch(ref.at[self.rows], buffer)
    return _load(buffer, plgpu.Layout.WGMMA)

  def vector(self, ref: Any) -> Array:
    buffer = self.scratch['vector'].at[pl.ds(0, ref.shape[0])]
    self._fetch(ref, buffer)
    return _load(buffer, plgpu.Layout.WGMMA.reduce(0))

  def write(self, ref: Any, value: Array) -> None:
    if len(ref.shape) == 1:
      buffer = self.scratch['samples']
    else:
      buffer = self.scratch[_rows_buffer(ref.shape[-1], ref.dtype)]
    buffer[...] = value.astype(ref.dtype)
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(buffer, ref.at[self.rows])
    plgpu.wait_smem_to_gmem(0)

  def _tile_product(self, parts: Sequence[Array], kernel: Any, column: int) -> Array:
    """concat(parts) @ kernel[:, column tile], one weight tile at a time: float32 [64, 64]."""

    def accumulate(acc):
      first_row = 0
      for part in parts:
        for start in range(0, part.shape[1], GPU_TILE):
          self._fetch(kernel.at[pl.ds(first_row + start, GPU_TILE), pl.ds(column, GPU_TILE)],
                      self.scratch['stage'])
          plgpu.wgmma(acc, part[:, start:start + GPU_TILE].astype(jnp.bfloat16),
                      self.scratch['stage'])
          plgpu.wgmma_wait(0)  # The stage is refilled next.
        first_row += part.shape[1]
      return acc[...]

    return pl.run_scoped(accumulate, plgpu.ACC((GPU_TILE, GPU_TILE), jnp.float32))

  def _product(self, parts: Sequence[Array], kernel: Any) -> Array:
    """concat(parts) @ kernel [K, N]: float32 [64, N], its column tiles gathered in SMEM."""
    width, buffer = kernel.shape[-1], self.scratch['product']
    for column in range(0, width, GPU_TILE):
      buffer.at[:, pl.ds(column, GPU_TILE)][...] = self._tile_product(parts, kernel, column)
    plgpu.commit_smem()
    return _load(buffer.at[:, pl.ds(0, width)], plgpu.Layout.WGMMA)

  def matmul(self, parts: Sequence[Array], kernel: Any) -> Array:
    return self._product(parts, kernel).astype(self.dtype)

  def lookup(self, table: Any, classes: Array) -> Array:
    shape = (GPU_TILE, table.shape[0])
    one_hot = (self.iota(shape) == _broadcast_rows(classes, shape)).astype(jnp.float32)
    return self.matmul([one_hot], table)  # Exact: one bf16 weight times 1, plus zeros.

  def iota(self, shape: tuple[int, int]) -> Array:
    return plgpu.broadcasted_iota(jnp.int32, shape, 1, layout=plgpu.Layout.WGMMA)

  def cumsum(self, x: Array) -> tuple[Array, Array]:
    cdf = _triangular_cumsum(x, lambda part: self._product([part], self.triangle))
    return cdf, jnp.max(cdf, axis=1)

  def skip_add(self, layer: int, gate_out: Array, skip_kernel: Any) -> None:
    half, skip = gate_out.shape[1], self.scratch['skip']
    rows = skip_kernel.at[pl.ds(layer * half, half)]
    for column in range(0, skip.shape[1], GPU_TILE):
      tile = skip.at[:, pl.ds(column, GPU_TILE)]
      product = self._tile_product([gate_out], rows, column)
      tile[...] = product if layer == 0 else _load(tile, plgpu.Layout.WGMMA) + product
    plgpu.commit_smem()

  def skip_sum(self, skip_kernel: Any) -> Array:
    del skip_kernel
    return _load(self.scratch['skip'], plgpu.Layout.WGMMA).astype(self.dtype)


def _triangular_cumsum(x: Array, by_triangle: Any) -> Array:
  """Cumulative sums along the columns of float32 x [rows, N] as matmuls with bf16 inputs.

  by_triangle(part) is part @ the upper-triangular ones [N, N] with `part` rounded to bf16
  and f32 accumulation (wgmma); x is split in a bf16 head and the tail left over, so the
  sums keep about 16 bits of x (bf16 alone: 8).
  """
  head = x.astype(jnp.bfloat16).astype(jnp.float32)
  return by_triangle(head) + by_triangle(x - head)


def _load(ref: Any, layout: Any) -> Array:
  """plgpu.load of a whole SMEM ref in `layout` (jax 0.10 needs the index, 0.11 deprecates it)."""
  if _LOAD_TAKES_INDEX:
    return plgpu.load(ref, (), layout=layout)
  return plgpu.load(ref, layout=layout)


def _argmax(ops: Any, x: Array) -> Array:
  """jnp.argmax(x, axis=1) (the first maximum) by a maximum and a minimum: int32 [tile]."""
  shape = x.shape
  best = _broadcast_rows(jnp.max(x, axis=1), shape)
  return jnp.min(jnp.where(x == best, ops.iota(shape), shape[1]), axis=1)


def _categorical(ops: Any, logits: Array, temperature: Array, uniform: Array,
                 num_classes: int) -> Array:
  """`distributions.sample_categorical` with its cumulative sum by `ops`: int32 [tile].

  Columns past num_classes (padding) have logits -inf: no mass, never drawn.
  """
  shape = logits.shape
  scaled = (logits - _broadcast_rows(jnp.max(logits, axis=1), shape)) / temperature
  cdf, total = ops.cumsum(jnp.exp(scaled))
  count = jnp.sum((cdf <= _broadcast_rows(uniform * total, shape)).astype(jnp.int32), axis=1)
  return jnp.minimum(count, num_classes - 1)


def _pcm_encode(value: Array, num_classes: int) -> Array:
  """`codecs.pcm_encode` without floor (Mosaic GPU lowers none): clipped to its integer bounds
  first, then truncated and corrected below zero (the same classes)."""
  half = num_classes // 2
  levels = jnp.clip(value * half + 0.5, -half, half - 1)
  truncated = levels.astype(jnp.int32)
  return truncated - (truncated.astype(jnp.float32) > levels).astype(jnp.int32) + half


def _draw(ops: Any, head: distributions.Head, outputs: list[Array], temperature: Array,
          uniforms: Optional[list[Array]]) -> Array:
  """`head.sample` of the output groups float32 [tile, width] (the mixture's logits, means
  and log scales; the softmax's logits) with ops that lower: int32 [tile]."""
  greedy = uniforms is None
  if isinstance(head, distributions.MulawSoftmax):
    if greedy:
      return _argmax(ops, outputs[0])
    return _categorical(ops, outputs[0], temperature, uniforms[0], head.num_classes)
  if not isinstance(head, distributions.MixtureOfLogistics):
    raise NotImplementedError(f'the Pallas sampler has no draw for the {head.name!r} head.')
  logits, means, log_scales = outputs
  log_scales = jnp.maximum(log_scales, head.log_scale_min)
  if greedy:
    component = _argmax(ops, logits)
  else:
    component = _categorical(ops, logits, jnp.float32(1.0), uniforms[0], head.num_mixtures)
  chosen = ops.iota(logits.shape) == _broadcast_rows(component, logits.shape)
  value = jnp.sum(jnp.where(chosen, means, 0.0), axis=1)  # take_along_axis: exact.
  if not greedy:
    # uniforms[1] is the logistic variate (`distributions.logistic_variate`).
    log_scale = jnp.sum(jnp.where(chosen, log_scales, 0.0), axis=1)
    value = value + temperature * jnp.exp(log_scale) * uniforms[1]
  return _pcm_encode(value, head.num_classes)


def _sampling_kernel(model: WaveNet, num_samples: int, names: tuple[str, ...],
                     scratch_names: tuple[str, ...], batch_tile: int, interpret: bool,
                     *refs) -> None:
  """The kernel body: `num_samples` steps of one batch tile (see the module docstring).

  Refs (inputs in `names` order, GMEM; the outputs (interpret mode) or the samples output
  (GPU); on a GPU `_gpu_scratch`'s buffers in `scratch_names` order):
  time int32 [1], temperature float32 [1], last_sample int32 [batch], gate_bias
  [L, batch, G], uniforms float32 [T, per_sample, batch] (unless greedy), local features
  [T, batch, C] (local conditioning), the `_weights`, triangle (GPU sampling), the ring
  [rows, batch, R] (aliased to the ring output); outputs: samples int32 [T, batch], the ring.
  """
  inputs = dict(zip(names, refs))
  if interpret:  # pallas_call: the ring is read and written through its aliased output.
    samples_ref, ring_ref = refs[len(names):len(names) + 2]
    ops = _InterpretOps(pl.ds(pl.program_id(0) * batch_tile, batch_tile))
  else:  # plgpu.kernel: the ring input is a mutable Ref.
    samples_ref, ring_ref = refs[len(names)], inputs['ring']
    ops = _GpuOps(pl.ds(lax.axis_index(_TILE_AXIS) * batch_tile, batch_tile), model.dtype,
                  dict(zip(scratch_names, refs[len(names) + 1:])), inputs.get('triangle'))
  head = model.distribution
  num_layers, dtype = model.num_layers, model.dtype
  offsets, sizes = models._ring_layout(model)
  start_time, temperature = inputs['time'][0], inputs['temperature'][0]
  residual_shape = (batch_tile, model.residual_channels)

  def step(i, sample):
    time = start_time + i
    local = ops.read(inputs['local_features'].at[i]) if 'local_kernel' in inputs else None
    if head.value_input:
      value = _broadcast_rows(model.codec.values(sample).astype(dtype), residual_shape)
      embedding, input_table = inputs['embedding'], inputs['input_table']
      h = (value * _broadcast_columns(ops.vector(embedding.at[0]), residual_shape)
           + _broadcast_columns(ops.vector(embedding.at[1]), residual_shape))
      gate_shape = (batch_tile, model.gate_channels)
      current_0 = (_broadcast_rows(model.codec.values(sample).astype(dtype), gate_shape)
                   * _broadcast_columns(ops.vector(input_table.at[0]), gate_shape)
                   + _broadcast_columns(ops.vector(input_table.at[1]), gate_shape))
    else:
      h = ops.lookup(inputs['embedding'], sample)
      current_0 = ops.lookup(inputs['input_table'], sample)
    for l in range(num_layers):
      # Read the past taps (oldest first) before this layer's write: the oldest shares its row.
      taps = [ops.read(ring_ref.at[offsets[l] + (time - m * model.dilations[l]) % sizes[l]])
              for m in range(model.kernel_size - 1, 0, -1)]
      ops.write(ring_ref.at[offsets[l] + time % sizes[l]], h)
      # Decoder.step's order of additions (the same rounding).
      z = ops.matmul(taps, inputs['past_kernels'].at[l]) + ops.read(inputs['gate_bias'].at[l])
      if local is not None:
        z = z + ops.matmul([local], inputs['local_kernel'].at[l])
      z = z + (current_0 if l == 0 else ops.matmul([h], inputs['current_kernels'].at[l - 1]))
      gate_out = models.gated_unit(z)
      ops.skip_add(l, gate_out, inputs['skip_kernel'])
      if l < num_layers - 1:
        bias = ops.vector(inputs['residual_biases'].at[l])
        h = (ops.matmul([gate_out], inputs['residual_kernels'].at[l])
             + _broadcast_columns(bias, residual_shape)) + h
    skips = ops.skip_sum(inputs['skip_kernel'])
    skips = skips + _broadcast_columns(ops.vector(inputs['skip_bias']), skips.shape)
    # The model's head (`WaveNet.head`): relu, dense, relu, dense, float32 at the end (relu as
    # a maximum: jax.nn.relu's custom_jvp does not lower for Mosaic GPU).
    hidden = ops.matmul([jnp.maximum(skips, 0)], inputs['head_hidden_kernel'])
    hidden = jnp.maximum(
        hidden + _broadcast_columns(ops.vector(inputs['head_hidden_bias']), hidden.shape), 0)
    outputs = []
    for group in range(inputs['head_out_kernel'].shape[0]):
      out = ops.matmul([hidden], inputs['head_out_kernel'].at[group])
      bias = ops.vector(inputs['head_out_bias'].at[group])
      outputs.append((out + _broadcast_columns(bias, out.shape)).astype(jnp.float32))
    uniforms = None
    if 'uniforms' in inputs:
      uniforms = [ops.read(inputs['uniforms'].at[i, u])
                  for u in range(inputs['uniforms'].shape[1])]
    sample = _draw(ops, head, outputs, temperature, uniforms)
    ops.write(samples_ref.at[i], sample)
    return sample

  lax.fori_loop(0, num_samples, step, ops.read(inputs['last_sample']))


def _padded(x: Array, axis: int, multiple: int, value: float = 0) -> Array:
  """x padded with `value` along `axis` to a multiple of `multiple`."""
  pad = -x.shape[axis] % multiple
  if not pad:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, pad)
  return jnp.pad(x, widths, constant_values=value)


def _weights(decoder: Decoder, gpu: bool) -> dict[str, Array]:
  """The decoder's parameters as stacked arrays (one per kind, layer-major) for the kernel.

  Interpret mode: as `Decoder.step` uses them. GPU: matrices in bf16, vectors in float32,
  the class tables' rows, the local channels and the output groups' columns padded to
  GPU_TILE (zeros; the logits' padding -inf).
  """
  model = decoder.model
  head = model.distribution
  params = decoder.variables['params']
  tile = GPU_TILE if gpu else 1

  def matrix(x: Array, rows_axis: Optional[int] = None) -> Array:
    x = x.astype(jnp.bfloat16 if gpu else model.dtype)
    return x if rows_axis is None else _padded(x, rows_axis, tile)

  def vector(x: Array) -> Array:
    return x.astype(jnp.float32 if gpu else model.dtype)

  if head.value_input:  # [2, width]: rows used as vectors.
    weights = {'embedding': vector(decoder.embedding), 'input_table': vector(decoder.input_table)}
  else:
    weights = {'embedding': matrix(decoder.embedding, 0),
               'input_table': matrix(decoder.input_table, 0)}
  weights.update(past_kernels=matrix(decoder.past_kernels), skip_kernel=matrix(decoder.skip_kernel),
                 skip_bias=vector(decoder.skip_bias))
  if model.num_layers > 1:
    weights.update(current_kernels=matrix(jnp.stack(decoder.current_kernels)),
                   residual_kernels=matrix(jnp.stack(decoder.residual_kernels)),
                   residual_biases=vector(jnp.stack(decoder.residual_biases)))
  weights['head_hidden_kernel'] = matrix(params['head_hidden']['kernel'].astype(model.dtype))
  weights['head_hidden_bias'] = vector(params['head_hidden']['bias'].astype(model.dtype))
  # The output head's column groups (the mixture's logits, means, log scales): [groups, S, w].
  groups = 3 if isinstance(head, distributions.MixtureOfLogistics) else 1
  kernel = params['head_out']['kernel'].astype(model.dtype)
  kernel = kernel.reshape(model.skip_channels, groups, -1).transpose(1, 0, 2)
  bias = params['head_out']['bias'].astype(model.dtype).reshape(groups, -1)
  weights['head_out_kernel'] = matrix(kernel, 2)
  weights['head_out_bias'] = jnp.concatenate(
      [_padded(vector(bias[:1]), 1, tile, -jnp.inf), _padded(vector(bias[1:]), 1, tile)])
  if decoder.local_kernel is not None:
    local = decoder.local_kernel.reshape(-1, model.num_layers, model.gate_channels)
    weights['local_kernel'] = matrix(local.transpose(1, 0, 2), 1)
  return weights


def _rows_buffer(width: int, dtype: Any) -> str:
  """The name of the SMEM buffer a per-row input [64, width] of `dtype` lands in."""
  return f'rows_{width}_{jnp.dtype(dtype).name}'


def _gpu_scratch(model: WaveNet, inputs: dict[str, Array]) -> dict[str, Any]:
  """The SMEM buffers and the TMA barrier of `_GpuOps`, by name."""
  widths = [model.gate_channels, model.skip_channels, inputs['head_out_kernel'].shape[2]]
  per_row = [inputs['ring'], inputs['gate_bias']] + (
      [inputs['local_features']] if 'local_features' in inputs else [])
  vectors = ['skip_bias', 'residual_biases', 'head_hidden_bias', 'head_out_bias'] + (
      ['embedding', 'input_table'] if model.distribution.value_input else [])
  vector_width = max(inputs[name].shape[-1] for name in vectors if name in inputs)
  scratch = {
      'stage': plgpu.SMEM((GPU_TILE, GPU_TILE), jnp.bfloat16, transforms=_BF16_SMEM),
      'product': plgpu.SMEM((GPU_TILE, max(widths)), jnp.float32, transforms=_F32_SMEM),
      'skip': plgpu.SMEM((GPU_TILE, model.skip_channels), jnp.float32, transforms=_F32_SMEM),
      'vector': plgpu.SMEM((vector_width,), jnp.float32),
      'row_vector': plgpu.SMEM((GPU_TILE,), jnp.float32),
      'samples': plgpu.SMEM((GPU_TILE,), jnp.int32),
      'barrier': plgpu.Barrier(num_barriers=1),
  }
  for array in per_row:
    scratch[_rows_buffer(array.shape[-1], array.dtype)] = plgpu.SMEM(
        (GPU_TILE, array.shape[-1]), array.dtype,
        transforms=_F32_SMEM if array.dtype == jnp.float32 else _BF16_SMEM)
  return scratch


def _chunk_uniforms(keys: Array, noise_offset: Array, time: Array, num_samples: int,
                    per_sample: int) -> Array:
  """The XLA sampler's uniforms of the chunk's samples (times time + 1 .. time + T).

  Returns:
    float32 [batch, num_samples, per_sample]: row r's sample at time t + 1 gets position
    t + 1 + noise_offset[r]'s (`sampler._noise_block`).
  """
  first = time + 1 + noise_offset
  blocks = num_samples // sampler.NOISE_BLOCK + 2
  noise = jnp.concatenate([sampler._noise_block(keys, first // sampler.NOISE_BLOCK + b,
                                                per_sample) for b in range(blocks)], axis=1)
  return jax.vmap(lambda row, start: jax.lax.dynamic_slice_in_dim(row, start, num_samples))(
      noise, first % sampler.NOISE_BLOCK)


def _chunk_local_features(decoder: Decoder, conditioning: sampler.SamplerConditioning,
                          time: Array, num_samples: int) -> Array:
  """Upsampled local features of times time .. time + T - 1: [batch, T, C].

  Frame by frame with the model's upsampler, as the XLA sampler upsamples them (the same
  computation, so the same features); frames past the window repeat its last (unused).
  """
  frames = conditioning.local_frames
  hop_length = decoder.model.hop_length
  first = time // hop_length
  count = num_samples // hop_length + 2

  def upsample(index):
    index = jnp.minimum(index, conditioning.first_frame + frames.shape[1] - 1)
    return decoder.upsample(jax.lax.dynamic_slice_in_dim(
        frames, index - conditioning.first_frame, 1, axis=1))

  blocks = jax.lax.map(upsample, first + jnp.arange(count))  # [count, B, hop, C]
  features = jnp.moveaxis(blocks, 0, 1).reshape(frames.shape[0], count * hop_length, -1)
  return jax.lax.dynamic_slice_in_dim(features, time % hop_length, num_samples, axis=1)


def generate_chunk(decoder: Decoder, conditioning: sampler.SamplerConditioning,
                   cache: sampler.SamplerCache, keys: Array, temperature: Array,
                   num_samples: int, greedy: bool, batch_tile: Optional[int] = None,
                   interpret: Optional[bool] = None) -> tuple[sampler.SamplerCache, Array]:
  """The next `num_samples` samples by the kernel: `sampler._generate_chunk`'s counterpart.

  Args:
    decoder, conditioning, cache: of a `sampler.SamplerState` (the cache is donated).
    keys: [batch] the rows' noise keys (`sampler.row_keys`).
    temperature: float32 scalar (ignored when greedy).
    num_samples: samples to generate (T).
    greedy: take each step's mode.
    batch_tile: sequences per kernel instance in interpret mode; it must divide the batch
      (default min(batch, BATCH_TILE)). On a GPU: GPU_TILE (the batch padded to it).
    interpret: run the kernel in Pallas interpret mode; None: unless the backend is a GPU.

  Returns:
    (the cache after the chunk, int32 samples [batch, num_samples]).
  """
  if interpret is None:
    interpret = jax.default_backend() != 'gpu'
  if not interpret:
    check_tiling(decoder.model)
  batch_tile = _batch_tile(cache.last_sample.shape[0], batch_tile, interpret)
  return _generate_chunk(decoder, conditioning, cache, keys, temperature, num_samples=num_samples,
                         greedy=greedy, batch_tile=batch_tile, interpret=interpret)


@functools.partial(jax.jit, static_argnames=('num_samples', 'greedy', 'batch_tile', 'interpret'),
                   donate_argnames='cache')
def _generate_chunk(decoder: Decoder, conditioning: sampler.SamplerConditioning,
                    cache: sampler.SamplerCache, keys: Array, temperature: Array,
                    num_samples: int, greedy: bool, batch_tile: int,
                    interpret: bool) -> tuple[sampler.SamplerCache, Array]:
  """`generate_chunk`'s compiled part: one pallas_call over a grid of batch tiles."""
  model = decoder.model
  head = model.distribution
  gpu = not interpret
  batch_size = cache.last_sample.shape[0]
  time = cache.time
  rows = functools.partial(_padded, multiple=batch_tile)  # The batch padded to whole tiles.
  vector_dtype = jnp.float32 if gpu else model.dtype
  inputs = {'time': time[None], 'temperature': temperature[None],
            'last_sample': rows(cache.last_sample, 0),
            'gate_bias': rows(conditioning.gate_bias.astype(vector_dtype), 1)}
  if not greedy:
    uniforms = _chunk_uniforms(keys, conditioning.noise_offset, time, num_samples,
                               head.uniforms_per_sample)
    if isinstance(head, distributions.MixtureOfLogistics):
      uniforms = uniforms.at[..., 1].set(distributions.logistic_variate(uniforms[..., 1]))
    inputs['uniforms'] = rows(jnp.transpose(uniforms, (1, 2, 0)), 2)  # [T, per_sample, B]
  if conditioning.local_frames is not None:
    features = _chunk_local_features(decoder, conditioning, time, num_samples)
    features = jnp.swapaxes(features, 0, 1).astype(vector_dtype)  # [T, B, C]
    inputs['local_features'] = rows(_padded(features, 2, GPU_TILE) if gpu else features, 1)
  inputs.update(_weights(decoder, gpu))
  if gpu and not greedy:
    width = inputs['head_out_kernel'].shape[2]
    inputs['triangle'] = jnp.triu(jnp.ones((width, width), jnp.bfloat16))
  inputs['ring'] = rows(cache.decode.ring, 1)
  names = tuple(inputs)
  ring = inputs['ring']
  samples_type = jax.ShapeDtypeStruct((num_samples, ring.shape[1]), jnp.int32)
  tiles = ring.shape[1] // batch_tile
  if gpu:
    scratch = _gpu_scratch(model, inputs)
    # pl.kernel on a Mosaic GPU mesh (jax 0.11 lowers no Mosaic GPU pallas_call); the ring, a
    # mutable Ref, is updated in place (aliased in and out of the kernel). The scratch is
    # allocated inside, as plgpu.kernel does (whose vmap wrapper takes no Ref).
    body = functools.partial(_sampling_kernel, model, num_samples, names, tuple(scratch),
                             batch_tile, interpret)
    ring_ref = jax.new_ref(ring)
    samples = pl.kernel(
        lambda *refs: pl.run_scoped(functools.partial(body, *refs), *scratch.values()),
        out_type=samples_type, mesh=plgpu.Mesh(grid=(tiles,), grid_names=(_TILE_AXIS,)),
        compiler_params=plgpu.CompilerParams(), name='wavenet_sampling',
    )(*list(inputs.values())[:-1], ring_ref)
    ring = jax.freeze(ring_ref)
  else:
    whole = pl.BlockSpec(memory_space=pl.ANY)
    samples, ring = pl.pallas_call(
        functools.partial(_sampling_kernel, model, num_samples, names, (), batch_tile,
                          interpret),
        out_shape=(samples_type, jax.ShapeDtypeStruct(ring.shape, ring.dtype)),
        grid=(tiles,), in_specs=[whole] * len(names), out_specs=(whole, whole),
        input_output_aliases={len(names) - 1: 1}, interpret=True, name='wavenet_sampling',
    )(*inputs.values())
  samples = samples.T[:batch_size]
  decode = models.DecodeState(ring=ring[:, :batch_size], time=time + num_samples)
  return sampler.SamplerCache(decode=decode, last_sample=samples[:, -1]), samples
