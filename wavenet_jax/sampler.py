"""Fast autoregressive generation from a WaveNet (Paine et al., 2016).

The model owns its one-sample step (`models.Decoder`: weights laid out once, a ring
buffer of every layer's past inputs in `models.DecodeState`, O(layers) work per sample);
this module samples with it. Steps run inside `jax.jit` as a `jax.lax.scan` over time.

Sampling (the head's `sample`, `WaveNet.distribution`) inverts the cumulative distribution
of softmax(logits / temperature) at one uniform number u_s per sample (one random
number per sample instead of one per class, as Gumbel-max would need); the
mixture-of-logistics head takes two (the component, the logistic variate),
`Head.uniforms_per_sample`. Every sequence (row) of a batch has
its own key (`row_keys`: one key k gives row r the key fold_in(k, r)), and its
uniforms are drawn NOISE_BLOCK samples at a time, block i from fold_in(row key, i),
so u_s depends on the row's key and the position s only, not on the batch the
row is in: generating in chunks gives exactly the samples of one long call, and
a row generated alone (with its key) gives the samples it gives in a batch. A
row's positions may be offset (`init_state(noise_offset=...)`): a segment of an
utterance generated on its own row then draws the noise of its place in the
utterance (see synthesis.py's folded generation).

Batch parallelism: given a mesh (see `batch_mesh`), `init_state` splits the batch
over all its devices and replicates the weights; every step is then per-sequence
work only, so the devices run without communicating (on a CPU host, one device per
core: `use_every_cpu_core`, or JAX_NUM_CPU_DEVICES=2 gives a 2-core machine two).
The mesh is `sharding.batch_mesh`.

Local conditioning features are upsampled one frame at a time with the model's
own upsampler (every frame spreads over exactly its own hop_length samples, no
look-ahead), so memory stays O(hop_length) however long the output is; the state
may hold only a window of the frames (`replace_local_frames`: streaming, the
frames as they arrive).

Sequence convention: the generated samples follow `prompt` (int32 [batch, P]);
without a prompt, generation starts from one silent sample (`WaveNet.silence_class`,
μ-law 0.0) at time 0 that is not returned. The step at time t uses the local
features of time t, exactly as `logits[:, t]` of the parallel forward does.
"""
import dataclasses
import functools
import os
from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wavenet_jax import distributions
from wavenet_jax import models
from wavenet_jax import sharding
from wavenet_jax.models import Decoder, DecodeState, WaveNet

Array = jax.Array

# The mesh a generation splits its batch over (sampler.batch_mesh is its public name here).
batch_mesh = sharding.batch_mesh

# Samples per block of sampling noise drawn at once (noise of sample s: row
# s % NOISE_BLOCK of the block drawn from fold_in(rng, s // NOISE_BLOCK)).
NOISE_BLOCK = 256
# How generate_chunk steps: 'xla' (the scan over Decoder.step, the default everywhere) or
# 'pallas' (one persistent kernel per chunk, pallas_sampler.py; opt-in: its GPU speed is not
# measured yet).
KERNELS = ('xla', 'pallas')
# lax.scan unroll of the step loop: none, as the step is bound by streaming its weights, not
# by loop overhead (experiments/benchmarks/step_profile.py measures other values).
SCAN_UNROLL = 1


@flax.struct.dataclass
class SamplerConditioning:
  """Per-generation constants.

  Attributes:
    gate_bias: [layers, batch, gate] each layer's bias plus its global
      conditioning term (`Decoder.gate_bias`).
    local_frames: float [batch, frames, local_cond_channels] frame-rate features,
      or None (no local conditioning).
    first_frame: int32 scalar, the index of local_frames[:, 0] in the whole sequence
      (0 unless a window of frames was put in with `replace_local_frames`).
    noise_offset: int32 [batch], added to each row's positions when its noise is drawn.
  """
  gate_bias: Array
  local_frames: Optional[Array]
  first_frame: Array
  noise_offset: Array


@flax.struct.dataclass
class SamplerCache:
  """What changes from step to step.

  Attributes:
    decode: the model's cache (`models.DecodeState`) at the time of `last_sample`.
    last_sample: int32 [batch], x[decode.time]: the input of the next step.
  """
  decode: DecodeState
  last_sample: Array

  @property
  def time(self) -> Array:
    """int32 scalar, the time of `last_sample`."""
    return self.decode.time


@flax.struct.dataclass
class SamplerState:
  """Everything `generate_chunk` needs to continue a generation.

  Create with `init_state`; `generate_chunk` consumes it (its cache buffers are
  donated) and returns the next one. `kernel` (one of KERNELS) says how it steps.
  """
  decoder: Decoder
  conditioning: SamplerConditioning
  cache: SamplerCache
  kernel: str = flax.struct.field(pytree_node=False, default='xla')

  @property
  def model(self) -> WaveNet:
    return self.decoder.model

  @property
  def batch_size(self) -> int:
    return self.cache.last_sample.shape[0]


# ---------------------------------------------------------------------------
# Preparing weights, conditioning and caches.


def _check_inputs(model: WaveNet, batch_size: int, prompt: Optional[Array],
                  global_cond: Optional[Array], local_cond: Optional[Array]) -> None:
  """One-line ValueErrors for inputs that do not fit the model or each other."""
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}.')
  if prompt is not None:
    if (prompt.ndim != 2 or prompt.shape[0] != batch_size or prompt.shape[1] < 1
        or not jnp.issubdtype(prompt.dtype, jnp.integer)):
      raise ValueError(f'prompt must be int32 classes [{batch_size}, >= 1], '
                       f'got {prompt.dtype} {prompt.shape}.')
    low, high = int(np.min(prompt)), int(np.max(prompt))
    if low < 0 or high >= model.num_classes:
      raise ValueError(f'prompt classes must lie in [0, {model.num_classes - 1}], '
                       f'got [{low}, {high}].')
  # Frames are checked against the prompt below and against every chunk's end.
  models.check_conditioning(model, batch_size, global_cond, local_cond)


def _check_kernel(model: WaveNet, kernel: str, mesh: Optional[Mesh]) -> None:
  """One-line ValueErrors for a kernel that is unknown or cannot step this model."""
  if kernel not in KERNELS:
    raise ValueError(f'kernel must be one of {KERNELS}, got {kernel!r}.')
  if kernel == 'pallas':
    if mesh is not None and mesh.size > 1:
      raise ValueError(f"kernel='pallas' runs on one device, not a mesh of {mesh.size}.")
    if jax.default_backend() == 'gpu':
      from wavenet_jax import pallas_sampler  # Pallas only when asked for.
      pallas_sampler.check_tiling(model)


def use_every_cpu_core() -> None:
  """Makes JAX's CPU backend one device per core this process may run on.

  Unless the user chose a count (JAX_NUM_CPU_DEVICES, or --xla_force_host_platform_device_count
  in XLA_FLAGS). With several devices XLA:CPU's intra-op thread pool is turned off too, unless
  XLA_FLAGS sets it (the devices already use every core: see docs/performance.md). Call it
  before JAX initialises its backends. On a GPU or TPU host only the CPU backend, which sampling
  does not use, changes.
  """
  xla_flags = os.environ.get('XLA_FLAGS', '')
  if 'JAX_NUM_CPU_DEVICES' in os.environ or 'xla_force_host_platform_device_count' in xla_flags:
    return
  cores = len(os.sched_getaffinity(0))
  jax.config.update('jax_num_cpu_devices', cores)
  if cores > 1 and 'xla_cpu_multi_thread_eigen' not in xla_flags:
    os.environ['XLA_FLAGS'] = f'{xla_flags} --xla_cpu_multi_thread_eigen=false'.strip()


def _shard_over_batch(state: SamplerState, mesh: Mesh) -> SamplerState:
  """The state with its batch dimensions split over all of `mesh`'s devices, the rest replicated."""

  def batch_at(dim: int) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(*(None,) * dim, mesh.axis_names))

  replicated = NamedSharding(mesh, PartitionSpec())
  conditioning = state.conditioning
  return dataclasses.replace(
      state,
      decoder=jax.device_put(state.decoder, replicated),
      conditioning=SamplerConditioning(
          gate_bias=jax.device_put(conditioning.gate_bias, batch_at(1)),
          local_frames=(None if conditioning.local_frames is None
                        else jax.device_put(conditioning.local_frames, batch_at(0))),
          first_frame=jax.device_put(conditioning.first_frame, replicated),
          noise_offset=jax.device_put(conditioning.noise_offset, batch_at(0))),
      cache=SamplerCache(
          decode=DecodeState(ring=jax.device_put(state.cache.decode.ring, batch_at(1)),
                             time=jax.device_put(state.cache.decode.time, replicated)),
          last_sample=jax.device_put(state.cache.last_sample, batch_at(0))))


def init_state(model: WaveNet, variables: Any, *, batch_size: int = 1,
               prompt: Optional[Array] = None, global_cond: Optional[Array] = None,
               local_cond: Optional[Array] = None, noise_offset: Optional[Array] = None,
               mesh: Optional[Mesh] = None, kernel: str = 'xla') -> SamplerState:
  """Prepares a generation: weights, conditioning, and caches filled from the prompt.

  Args:
    model: the WaveNet.
    variables: its variables {'params': ...} (from `model.init` or a checkpoint; boxed or
      plain).
    batch_size: number of sequences generated together.
    prompt: int32 classes of the model's codec [batch_size, prompt_len >= 1] that the generated
      samples continue; None starts from one silent sample.
    global_cond: int32 speaker ids [batch_size] (speaker-conditioned models).
    local_cond: float [batch_size, frames, local_cond_channels] at hop_length
      samples per frame from the prompt's first sample on (locally conditioned
      models); it must cover prompt_len + all samples to be generated.
    noise_offset: int32 [batch_size] >= 0: row r's sample at time t gets the noise of
      position t + noise_offset[r] (a segment of a longer sequence generated on its
      own draws the noise of its place in that sequence); default 0.
    mesh: split the batch over all devices of this mesh (e.g. `batch_mesh(batch_size)`);
      None: one device. The samples are the same either way.
    kernel: how `generate_chunk` steps, one of KERNELS: 'xla' (a scan) or 'pallas' (one
      device; on a GPU residual, gate / 2 and skip widths multiples of
      pallas_sampler.GPU_TILE; the same samples in interpret mode).

  Returns:
    The state for `generate_chunk`.
  """
  _check_inputs(model, batch_size, prompt, global_cond, local_cond)
  _check_kernel(model, kernel, mesh)
  noise_offset = np.zeros(batch_size, np.int32) if noise_offset is None else noise_offset
  if np.shape(noise_offset) != (batch_size,) or not np.all(np.asarray(noise_offset) >= 0):
    raise ValueError(f'noise_offset must be [{batch_size}] integers >= 0, got '
                     f'{np.asarray(noise_offset).tolist()}.')
  if mesh is not None and batch_size % mesh.size:
    raise ValueError(f'batch_size {batch_size} does not split evenly over the mesh\'s '
                     f'{mesh.size} devices.')
  if prompt is None:
    prompt = jnp.full((batch_size, 1), model.silence_class, jnp.int32)
  prompt = jnp.asarray(prompt, jnp.int32)
  prompt_len = prompt.shape[1]
  if local_cond is not None and local_cond.shape[1] * model.hop_length < prompt_len:
    raise ValueError(f'local_cond has {local_cond.shape[1]} frames of {model.hop_length} '
                     f'samples: too few for the {prompt_len}-sample prompt.')
  decoder = model.decoder(variables)
  if prompt_len > 1:
    decode = decoder.prefill(prompt[:, :-1], global_cond, local_cond)
  else:
    decode = decoder.init_state(batch_size)
  cache = SamplerCache(decode=decode, last_sample=prompt[:, -1])
  if mesh is None:
    # The cache that generate_chunk returns is committed to the weights' device (a checkpoint's
    # weights are committed); commit the first one there too, or the second chunk compiles again.
    cache = jax.device_put(cache, decoder.input_table.sharding)
  state = SamplerState(
      decoder=decoder,
      conditioning=SamplerConditioning(
          gate_bias=decoder.gate_bias(batch_size, global_cond),
          local_frames=None if local_cond is None else jnp.asarray(local_cond),
          first_frame=jnp.zeros((), jnp.int32),
          noise_offset=jnp.asarray(noise_offset, jnp.int32)),
      cache=cache,
      kernel=kernel)
  return state if mesh is None else _shard_over_batch(state, mesh)


# ---------------------------------------------------------------------------
# Sampling and the scan over time.


# choose(carry, time, logits [batch, num_classes], step input) -> (carry, x[time + 1] int32
# [batch], step output): picks the next input (sampling, or teacher forcing).
ChooseFn = Callable[[Any, Array, Array, Any], tuple[Any, Array, Any]]


def _block_holding(block: Array, position: Array, block_size: int,
                   draw: Callable[[Array], Array]) -> Array:
  """The block of rows holding `position`: `draw(position // block_size)` when it enters one.

  Blocks cover positions [i * block_size, (i + 1) * block_size); `draw(i)` makes block i
  ([batch, rows, ...]), `block` is the one holding position - 1.
  """
  return jax.lax.cond(position % block_size == 0, draw, lambda _: block, position // block_size)


def _scan_steps(decoder: Decoder, conditioning: SamplerConditioning, cache: SamplerCache,
                num_steps: int, choose: ChooseFn, choose_carry: Any, step_inputs: Any = None,
                unroll: int = SCAN_UNROLL) -> tuple[SamplerCache, Any]:
  """Runs `num_steps` cached steps; `choose` picks each next input from the logits.

  Returns:
    (cache after the steps, the stacked per-step outputs of `choose`, time-major).
  """
  frames = conditioning.local_frames
  hop_length = decoder.model.hop_length

  def upsample_frame(frame_index: Array) -> Array:
    return decoder.upsample(jax.lax.dynamic_slice_in_dim(
        frames, frame_index - conditioning.first_frame, 1, axis=1))

  def body(carry, step_input):
    cache, local_block, choose_carry = carry
    time = cache.time
    local_feature = None
    if frames is not None:
      local_block = _block_holding(local_block, time, hop_length, upsample_frame)
      local_feature = jax.lax.dynamic_index_in_dim(local_block, time % hop_length,
                                                   axis=1, keepdims=False)
    decode, logits = decoder.step(cache.decode, cache.last_sample, conditioning.gate_bias,
                                  local_feature)
    choose_carry, next_sample, output = choose(choose_carry, time, logits, step_input)
    return (SamplerCache(decode=decode, last_sample=next_sample), local_block,
            choose_carry), output

  local_block = None if frames is None else upsample_frame(cache.time // hop_length)
  (cache, _, _), outputs = jax.lax.scan(body, (cache, local_block, choose_carry), step_inputs,
                                        length=num_steps, unroll=unroll)
  return cache, outputs


def _noise_block(keys: Array, block_index: Array, per_sample: int) -> Array:
  """Uniforms of each row's positions [i * NOISE_BLOCK, (i + 1) * NOISE_BLOCK).

  Args:
    keys: [batch] the rows' keys (`row_keys`).
    block_index: int32 [batch], i of each row.
    per_sample: uniforms per position (`Head.uniforms_per_sample`).

  Returns:
    float32 [batch, NOISE_BLOCK, per_sample] in [0, 1).
  """
  return jax.vmap(lambda key, index: jax.random.uniform(
      jax.random.fold_in(key, index), (NOISE_BLOCK, per_sample)))(keys, block_index)


@functools.partial(jax.jit, static_argnames=('num_samples', 'greedy', 'unroll'),
                   donate_argnames='cache')
def _generate_chunk(decoder: Decoder, conditioning: SamplerConditioning, cache: SamplerCache,
                    keys: Array, temperature: Array, num_samples: int, greedy: bool,
                    unroll: int = SCAN_UNROLL) -> tuple[SamplerCache, Array]:
  """`generate_chunk`'s compiled part; unroll: of the scan over steps."""
  offset = conditioning.noise_offset
  head = decoder.model.distribution
  per_sample = head.uniforms_per_sample

  def draw_noise(block_index: Array) -> Array:
    """Noise of the positions p + offset, p in [i * NOISE_BLOCK, (i + 1) * NOISE_BLOCK).

    They span two of each row's blocks: [batch, 2 * NOISE_BLOCK, per_sample], the first
    block's start at index 0.
    """
    first = block_index + offset // NOISE_BLOCK
    return jnp.concatenate([_noise_block(keys, first, per_sample),
                            _noise_block(keys, first + 1, per_sample)], axis=1)

  def choose(noise_window, time, logits, _):
    uniforms = None
    if not greedy:
      noise_window = _block_holding(noise_window, time + 1, NOISE_BLOCK, draw_noise)
      uniforms = jax.vmap(functools.partial(jax.lax.dynamic_index_in_dim, keepdims=False))(
          noise_window, (time + 1) % NOISE_BLOCK + offset % NOISE_BLOCK)
    next_sample = head.sample(logits, temperature, uniforms, greedy)
    return noise_window, next_sample, next_sample

  noise_window = None if greedy else draw_noise((cache.time + 1) // NOISE_BLOCK)
  cache, samples = _scan_steps(decoder, conditioning, cache, num_samples, choose, noise_window,
                               unroll=unroll)
  return cache, samples.T


def row_keys(rng: Array, batch_size: int) -> Array:
  """The noise keys of a batch's rows.

  Args:
    rng: one PRNG key (row r gets fold_in(rng, r)), or [batch_size] keys, one per row;
      typed (`jax.random.key`) or raw (uint32 [..., 2]).
    batch_size: rows.

  Returns:
    [batch_size] typed keys.
  """
  dtype = getattr(rng, 'dtype', None)
  if dtype is None or not (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key) or (
      dtype == np.uint32 and np.shape(rng)[-1:] == (2,))):
    raise ValueError(f'rng must be a PRNG key such as jax.random.key(seed) (or [batch_size] '
                     f'keys), got {type(rng).__name__} {rng!r:.40}.')
  if not jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
    rng = jax.random.wrap_key_data(rng)
  if rng.ndim == 0:
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(rng, jnp.arange(batch_size))
  if rng.shape != (batch_size,):
    raise ValueError(f'rng must be one key or [{batch_size}] keys (one per row), got '
                     f'{rng.shape} keys.')
  return rng


def replace_local_frames(state: SamplerState, local_frames: Array,
                         first_frame: int) -> SamplerState:
  """The state with local features frames [first_frame, first_frame + frames) only.

  Streaming: put in each frame as it arrives and generate its samples; memory stays
  constant, and a window of the same shape each time compiles nothing new.

  Args:
    state: from `init_state` (of a locally conditioned model) or `generate_chunk`.
    local_frames: float [batch, frames, local_cond_channels].
    first_frame: the index of local_frames[:, 0] in the whole sequence; the next sample's
      frame (state time // hop_length) must be in the window.
  """
  frames = state.conditioning.local_frames
  if frames is None or local_frames.shape[0] != frames.shape[0] or (
      local_frames.ndim != 3 or local_frames.shape[2] != frames.shape[2]):
    raise ValueError(f'local_frames must be [batch, frames, channels] like the state\'s '
                     f'{None if frames is None else frames.shape}, got {local_frames.shape}.')
  frame = int(state.cache.time) // state.model.hop_length
  if not first_frame <= frame < first_frame + local_frames.shape[1]:
    raise ValueError(f'frames [{first_frame}, {first_frame + local_frames.shape[1]}) do not '
                     f'hold frame {frame} of the next sample.')
  return dataclasses.replace(state, conditioning=dataclasses.replace(
      state.conditioning, local_frames=jnp.asarray(local_frames, frames.dtype),
      first_frame=jnp.asarray(first_frame, jnp.int32)))


def _check_local_frames_cover(state: SamplerState, num_times: int) -> None:
  """Raises unless the local features cover the times from the state's up to num_times - 1."""
  frames = state.conditioning.local_frames
  if frames is None:
    return
  end_frame = int(state.conditioning.first_frame) + frames.shape[1]
  if num_times > end_frame * state.model.hop_length:
    raise ValueError(
        f'local_cond has {frames.shape[1]} frames of {state.model.hop_length} samples: too few '
        f'for {num_times} samples (the prompt, or one silent sample, and the generated ones).')


def generate_chunk(state: SamplerState, rng: Array, num_samples: int,
                   temperature: float = 1.0) -> tuple[SamplerState, Array]:
  """Generates the next `num_samples` samples; compiled once per chunk size.

  Args:
    state: from `init_state` or the previous `generate_chunk`; consumed.
    rng: one PRNG key or [batch] keys (see `row_keys`); pass the same to every chunk
      of one generation (the noise of each sample is keyed by its absolute position).
    num_samples: samples to generate in this chunk.
    temperature: the head's temperature (`Head.sample`): 0 (greedy) or finite and
      >= distributions.MIN_TEMPERATURE.

  Returns:
    (next state, int32 classes of the model's codec [batch, num_samples]).
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}.')
  distributions.check_temperature(temperature)
  _check_local_frames_cover(state, int(state.cache.time) + num_samples)
  keys = jax.device_put(row_keys(rng, state.batch_size), state.conditioning.noise_offset.sharding)
  generate_cached = _generate_chunk
  if state.kernel == 'pallas':
    from wavenet_jax import pallas_sampler  # Pallas only when asked for.
    generate_cached = pallas_sampler.generate_chunk
  cache, samples = generate_cached(state.decoder, state.conditioning, state.cache, keys,
                                   jnp.float32(temperature), num_samples=num_samples,
                                   greedy=temperature == 0)
  return dataclasses.replace(state, cache=cache), samples


def generate(model: WaveNet, variables: Any, rng: Array, *, num_samples: int,
             batch_size: int = 1, temperature: float = 1.0, prompt: Optional[Array] = None,
             global_cond: Optional[Array] = None, local_cond: Optional[Array] = None,
             noise_offset: Optional[Array] = None, mesh: Optional[Mesh] = None,
             kernel: str = 'xla') -> Array:
  """Samples from a WaveNet with the cached (fast) algorithm.

  Args:
    model: the WaveNet.
    variables: its variables {'params': ...} (boxed or plain).
    rng: PRNG key of the sampling noise, or [batch_size] keys (see `row_keys`).
    num_samples: samples to generate after the prompt.
    batch_size: number of sequences (must match the prompt and conditioning).
    temperature: the head's temperature (`Head.sample`): 0 (greedy) or finite and
      >= distributions.MIN_TEMPERATURE.
    prompt: int32 classes of the model's codec [batch_size, prompt_len] to continue; None starts
      from one silent sample.
    global_cond: int32 speaker ids [batch_size].
    local_cond: float [batch_size, frames, local_cond_channels] covering
      prompt_len + num_samples samples at hop_length samples per frame.
    noise_offset: int32 [batch_size], each row's offset of its noise positions (see
      `init_state`).
    mesh: split the batch over this mesh's devices (see `init_state`).
    kernel: 'xla' or 'pallas' (see `init_state`).

  Returns:
    int32 classes of the model's codec [batch_size, num_samples]: the samples after the prompt.
  """
  distributions.check_temperature(temperature)  # Before the prompt's forward pass.
  state = init_state(model, variables, batch_size=batch_size, prompt=prompt,
                     global_cond=global_cond, local_cond=local_cond,
                     noise_offset=noise_offset, mesh=mesh, kernel=kernel)
  _, samples = generate_chunk(state, rng, num_samples, temperature)
  return samples
