"""A persistent Pallas sampling kernel: one launch generates a chunk of samples (issue 27).

The XLA sampler (`sampler.py`) runs one `lax.scan` step per sample; on a GPU each step is
a series of small kernels launched from the host, so one sequence is latency-bound. Here
one `pl.pallas_call` generates a whole chunk of T samples for a tile of the batch, the
time loop inside the kernel. Per sample and layer it reads the dilated taps from the ring
buffer (the `models.DecodeState` layout), applies the gate, tanh·σ, the residual, writes
the layer input back to the ring; then the skip matmul over all gate outputs, the output
head and the draw (`Head.sample`) from uniforms drawn before the launch: the uniforms of
the XLA sampler (keyed by position, `sampler._noise_block`), so both draw the same samples.

Conditioning: the per-layer gate bias (`Decoder.gate_bias`) already holds the speaker's
term; local features are upsampled for the chunk before the launch, one frame at a time
with the model's upsampler as the XLA sampler does, and projected inside the kernel.

Tiling: every matmul is computed in column tiles of `channel_tile` output channels over the
residual, gate (per half) and skip widths, which must be multiples of it (one-line
ValueError otherwise); the sum over input channels is never split, so a tile gives the
untiled dot products. The weights are per-layer slices of stacked arrays, read layer by
layer (on a GPU the point to stream each layer's weights from L2: B1's do not fit one SM).

Status: correct in Pallas interpret mode (`interpret=True`; how it runs off a GPU), where it
draws the XLA sampler's samples. Its speed is not measured, so `kernel='xla'` stays the
default. It does not lower for CUDA yet: Mosaic GPU's lowering (which `jax.export(...,
platforms=['cuda'])` runs on a CPU host, jaxlib 0.10.2) has no dot_general, argmax or cumsum
in its lane semantics, wants vectors of multiples of 128 elements, and puts every block in
shared memory (227 KiB on an H100: B1's weights cannot be whole blocks); a GPU version needs wgmma tiles (batch padded to 64),
hand-written draws, and the weights in GMEM copied per layer into double-buffered SMEM.
"""
import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from wavenet_jax import models
from wavenet_jax import sampler
from wavenet_jax.models import Decoder, WaveNet

Array = jax.Array

# Output channels per matmul tile: divides B1's widths (residual 64, gate halves 64, skip 256)
# and those of the small test models.
CHANNEL_TILE = 8
# Sequences per kernel instance (a grid step); a smaller batch is one tile.
BATCH_TILE = 8


def check_tiling(model: WaveNet, channel_tile: int) -> None:
  """One-line ValueError unless the residual, gate/2 and skip widths are multiples of the tile."""
  widths = {'residual_channels': model.residual_channels,
            'gate_channels / 2': model.gate_channels // 2, 'skip_channels': model.skip_channels}
  bad = {name: width for name, width in widths.items() if width % channel_tile}
  if channel_tile < 1 or bad:
    raise ValueError(f'channel_tile={channel_tile}: the Pallas sampler needs widths that are '
                     f'multiples of it, got {bad or widths}.')


def _batch_tile(batch_size: int, batch_tile: Optional[int]) -> int:
  """The batch tile: `batch_tile` (must divide the batch) or min(batch, BATCH_TILE)."""
  tile = min(batch_size, BATCH_TILE) if batch_tile is None else batch_tile
  if tile < 1 or batch_size % tile:
    raise ValueError(f'batch_tile={tile} must divide the batch size {batch_size}.')
  return tile


def _weights(decoder: Decoder) -> dict[str, Array]:
  """The decoder's parameters as stacked arrays (one per kind, layer-major) for the kernel."""
  model = decoder.model
  params = decoder.variables['params']
  weights = {
      'embedding': decoder.embedding,
      'input_table': decoder.input_table,
      'past_kernels': decoder.past_kernels,
      'skip_kernel': decoder.skip_kernel,
      'skip_bias': decoder.skip_bias,
  }
  if model.num_layers > 1:
    weights.update(current_kernels=jnp.stack(decoder.current_kernels),
                   residual_kernels=jnp.stack(decoder.residual_kernels),
                   residual_biases=jnp.stack(decoder.residual_biases))
  for name in ('head_hidden', 'head_out'):
    weights[f'{name}_kernel'] = params[name]['kernel'].astype(model.dtype)
    weights[f'{name}_bias'] = params[name]['bias'].astype(model.dtype)
  if decoder.local_kernel is not None:
    weights['local_kernel'] = decoder.local_kernel
  return weights


def _tiled_matmul(x: Array, kernel: Array, columns: range, tile: int) -> Array:
  """x [B, in] @ kernel[:, columns] [in, len(columns)], one matmul per `tile` columns."""
  return jnp.concatenate([x @ kernel[:, start:start + tile]
                          for start in range(columns.start, columns.stop, tile)], axis=-1)


def _sampling_kernel(model: WaveNet, num_samples: int, greedy: bool, channel_tile: int,
                     names: tuple[str, ...], *refs) -> None:
  """The kernel body: `num_samples` steps of one batch tile (see the module docstring).

  Refs (inputs in `names` order, then the outputs): time int32 [1], temperature float32
  [1], last_sample int32 [Bt], gate_bias [L, Bt, G], uniforms float32 [Bt, T, per_sample]
  (unless greedy), local features [Bt, T, C] (local conditioning), the `_weights`, the ring
  [rows, Bt, R] (aliased to the ring output); outputs: samples int32 [Bt, T], the ring.
  """
  inputs = dict(zip(names, refs))
  samples_ref, ring_ref = refs[len(names):]  # The ring output aliases inputs['ring'].
  head = model.distribution
  num_layers, dtype, tile = model.num_layers, model.dtype, channel_tile
  k, gate = model.kernel_size, model.gate_channels
  half = gate // 2
  offsets, sizes = models._ring_layout(model)
  start_time, temperature = inputs['time'][0], inputs['temperature'][0]
  local_kernel = inputs['local_kernel'] if 'local_kernel' in inputs else None

  def step(i, sample):
    time = start_time + i
    local = None
    if local_kernel is not None:
      local = inputs['local_features'][:, i, :].astype(dtype)
    if head.value_input:
      value = model.codec.values(sample).astype(dtype)[:, None]
      h = value * inputs['embedding'][0] + inputs['embedding'][1]
      current_0 = value * inputs['input_table'][0] + inputs['input_table'][1]
    else:
      h = inputs['embedding'][...][sample]
      current_0 = inputs['input_table'][...][sample]
    gate_outputs = []
    for l in range(num_layers):
      # This layer's weights, read once per sample (on a GPU: streamed in per layer).
      past_kernel, bias = inputs['past_kernels'][l], inputs['gate_bias'][l]
      current_kernel = None if l == 0 else inputs['current_kernels'][l - 1]
      layer_local_kernel = None if local is None else local_kernel[:, l * gate:(l + 1) * gate]
      # Read the past taps before this layer's write: the oldest tap shares its row.
      rows = [offsets[l] + (time - m * model.dilations[l]) % sizes[l] for m in range(k - 1, 0, -1)]
      past = jnp.concatenate([ring_ref[row] for row in rows], axis=-1)
      ring_ref[offsets[l] + time % sizes[l]] = h

      def z_columns(start: int) -> Array:
        """The conv output's gate columns [start, start + tile), in Decoder.step's order."""
        columns = slice(start, start + tile)
        z = past @ past_kernel[:, columns] + bias[:, columns]
        if layer_local_kernel is not None:
          z = z + local @ layer_local_kernel[:, columns]
        return z + (current_0[:, columns] if l == 0 else h @ current_kernel[:, columns])

      # Each tile of the gate output needs its filter columns and the gate columns half on.
      gate_out = jnp.concatenate(
          [models.gated_unit(jnp.concatenate([z_columns(start), z_columns(half + start)], -1))
           for start in range(0, half, tile)], axis=-1)
      gate_outputs.append(gate_out)
      if l < num_layers - 1:
        residual = range(model.residual_channels)
        h = (_tiled_matmul(gate_out, inputs['residual_kernels'][l], residual, tile)
             + inputs['residual_biases'][l]) + h
    skip = range(model.skip_channels)
    skips = (_tiled_matmul(jnp.concatenate(gate_outputs, axis=-1), inputs['skip_kernel'][...],
                           skip, tile) + inputs['skip_bias'][...])
    # The model's head (`WaveNet.head`): relu, dense, relu, dense, float32 at the end (relu as
    # a maximum: jax.nn.relu's custom_jvp does not lower for Mosaic GPU).
    hidden = (_tiled_matmul(jnp.maximum(skips, 0), inputs['head_hidden_kernel'][...], skip, tile)
              + inputs['head_hidden_bias'][...])
    outputs = (jnp.maximum(hidden, 0) @ inputs['head_out_kernel'][...]
               + inputs['head_out_bias'][...]).astype(jnp.float32)
    uniforms = None if greedy else inputs['uniforms'][:, i, :]
    sample = head.sample(outputs, temperature, uniforms, greedy)
    samples_ref[:, pl.ds(i, 1)] = sample[:, None]
    return sample

  jax.lax.fori_loop(0, num_samples, step, inputs['last_sample'][...])


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
                   num_samples: int, greedy: bool, channel_tile: int = CHANNEL_TILE,
                   batch_tile: Optional[int] = None,
                   interpret: Optional[bool] = None) -> tuple[sampler.SamplerCache, Array]:
  """The next `num_samples` samples by the kernel: `sampler._generate_chunk`'s counterpart.

  Args:
    decoder, conditioning, cache: of a `sampler.SamplerState` (the cache is donated).
    keys: [batch] the rows' noise keys (`sampler.row_keys`).
    temperature: float32 scalar (ignored when greedy).
    num_samples: samples to generate (T).
    greedy: take each step's mode.
    channel_tile: output channels per matmul tile (see `check_tiling`).
    batch_tile: sequences per kernel instance; it must divide the batch (default
      min(batch, BATCH_TILE)).
    interpret: run the kernel in Pallas interpret mode; None: unless the backend is a GPU.

  Returns:
    (the cache after the chunk, int32 samples [batch, num_samples]).
  """
  check_tiling(decoder.model, channel_tile)
  batch_tile = _batch_tile(cache.last_sample.shape[0], batch_tile)
  if interpret is None:
    interpret = jax.default_backend() != 'gpu'
  return _generate_chunk(decoder, conditioning, cache, keys, temperature, num_samples=num_samples,
                         greedy=greedy, channel_tile=channel_tile, batch_tile=batch_tile,
                         interpret=interpret)


@functools.partial(jax.jit, static_argnames=('num_samples', 'greedy', 'channel_tile',
                                             'batch_tile', 'interpret'),
                   donate_argnames='cache')
def _generate_chunk(decoder: Decoder, conditioning: sampler.SamplerConditioning,
                    cache: sampler.SamplerCache, keys: Array, temperature: Array,
                    num_samples: int, greedy: bool, channel_tile: int, batch_tile: int,
                    interpret: bool) -> tuple[sampler.SamplerCache, Array]:
  """`generate_chunk`'s compiled part: one pallas_call over a grid of batch tiles."""
  model = decoder.model
  batch_size = cache.last_sample.shape[0]
  time = cache.time
  inputs = {'time': time[None], 'temperature': temperature[None],
            'last_sample': cache.last_sample, 'gate_bias': conditioning.gate_bias}
  if not greedy:
    inputs['uniforms'] = _chunk_uniforms(keys, conditioning.noise_offset, time, num_samples,
                                         model.distribution.uniforms_per_sample)
  if conditioning.local_frames is not None:
    inputs['local_features'] = _chunk_local_features(decoder, conditioning, time, num_samples)
  inputs.update(_weights(decoder))
  inputs['ring'] = cache.decode.ring
  # The batch axis of the per-sequence inputs; the weights are whole in every instance.
  batch_axes = {'last_sample': 0, 'gate_bias': 1, 'uniforms': 0, 'local_features': 0, 'ring': 1}

  def spec(name: str, shape: tuple[int, ...]) -> pl.BlockSpec:
    axis = batch_axes.get(name)
    if axis is None:
      return pl.BlockSpec(shape, lambda i, n=len(shape): (0,) * n)
    block = shape[:axis] + (batch_tile,) + shape[axis + 1:]
    return pl.BlockSpec(block, lambda i, a=axis, n=len(shape): (0,) * a + (i,) + (0,) * (n - a - 1))

  names = tuple(inputs)
  ring = cache.decode.ring
  samples, ring = pl.pallas_call(
      functools.partial(_sampling_kernel, model, num_samples, greedy, channel_tile, names),
      out_shape=(jax.ShapeDtypeStruct((batch_size, num_samples), jnp.int32),
                 jax.ShapeDtypeStruct(ring.shape, ring.dtype)),
      grid=(batch_size // batch_tile,),
      in_specs=[spec(name, value.shape) for name, value in inputs.items()],
      out_specs=(pl.BlockSpec((batch_tile, num_samples), lambda i: (i, 0)),
                 spec('ring', ring.shape)),
      input_output_aliases={len(names) - 1: 1},
      interpret=interpret,
      name='wavenet_sampling',
  )(*inputs.values())
  decode = models.DecodeState(ring=ring, time=time + num_samples)
  return sampler.SamplerCache(decode=decode, last_sample=samples[:, -1]), samples
