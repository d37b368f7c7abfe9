"""Fast autoregressive generation from a WaveNet (Paine et al., 2016).

The model owns its one-sample step (`models.step`: weights laid out once, a ring
buffer of every layer's past inputs, O(layers) work per sample); this module
samples with it. Steps run inside `jax.jit` as a `jax.lax.scan` over time,
unrolled SCAN_UNROLL steps per iteration.

Sampling inverts the cumulative distribution of softmax(logits / temperature)
at one uniform number u_s per sample (one random number per sample instead of
one per class, as Gumbel-max would need). The uniforms are drawn NOISE_BLOCK
samples at a time, block i from `fold_in(rng, i)`, so u_s depends on the
absolute position s only: generating in chunks gives exactly the samples of one
long call.

Batch parallelism: given a mesh (see `batch_mesh`), `init_state` splits the batch
over all its devices and replicates the weights; every step is then per-sequence
work only, so the devices run without communicating (on a CPU host, one device per
core: JAX_NUM_CPU_DEVICES=2 gives a 2-core machine two).

Local conditioning features are upsampled one frame at a time with the model's
own upsampler (every frame spreads over exactly its own hop_length samples), so
memory stays O(hop_length) however long the output is.

Sequence convention: the generated samples follow `prompt` (int32 [batch, P]);
without a prompt, generation starts from one silent sample (`WaveNet.silence_class`,
μ-law 0.0) at time 0 that is not returned. The step at time t uses the local
features of time t, exactly as `logits[:, t]` of the parallel forward does.
"""
import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wavenet_jax import models
from wavenet_jax.models import StepWeights, WaveNet

Array = jax.Array

# The largest batch whose past taps `models.step` multiplies in one batched matmul.
BATCHED_PAST_TAPS_MAX_BATCH = models.BATCHED_PAST_TAPS_MAX_BATCH

# Samples per block of sampling noise drawn at once (noise of sample s: row
# s % NOISE_BLOCK of the block drawn from fold_in(rng, s // NOISE_BLOCK)).
NOISE_BLOCK = 256
# lax.scan unroll of the step loop (less loop overhead per sample).
SCAN_UNROLL = 4


@flax.struct.dataclass
class SamplerConditioning:
  """Per-generation constants.

  Attributes:
    gate_bias: [layers, batch, gate] each layer's bias plus its global
      conditioning term (`models.gate_bias`).
    local_frames: float [batch, frames, local_cond_channels] frame-rate features,
      or None (no local conditioning).
  """
  gate_bias: Array
  local_frames: Optional[Array]


@flax.struct.dataclass
class SamplerCache:
  """What changes from step to step.

  Attributes:
    ring: [rows, batch, residual] past inputs of every layer (see `models.step`).
    time: int32 scalar, the time of `last_sample`.
    last_sample: int32 [batch], x[time]: the input of the next step.
  """
  ring: Array
  time: Array
  last_sample: Array


@flax.struct.dataclass
class SamplerState:
  """Everything `generate_chunk` needs to continue a generation.

  Create with `init_state`; `generate_chunk` consumes it (its cache buffers are
  donated) and returns the next one.
  """
  model: WaveNet = flax.struct.field(pytree_node=False)
  weights: StepWeights
  conditioning: SamplerConditioning
  cache: SamplerCache

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
      raise ValueError(f'prompt must be int32 μ-law classes [{batch_size}, >= 1], '
                       f'got {prompt.dtype} {prompt.shape}.')
    low, high = int(np.min(prompt)), int(np.max(prompt))
    if low < 0 or high >= model.num_classes:
      raise ValueError(f'prompt classes must lie in [0, {model.num_classes - 1}], '
                       f'got [{low}, {high}].')
  # Frames are checked against the prompt below and against every chunk's end.
  models.check_conditioning(model, batch_size, global_cond, local_cond)


def batch_mesh(batch_size: int, devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
  """A one-axis mesh ('batch',) over the most of `devices` that split batch_size evenly.

  Args:
    batch_size: sequences generated together.
    devices: candidates, in order; default this process's devices.
  """
  devices = list(jax.local_devices() if devices is None else devices)
  count = max(n for n in range(1, len(devices) + 1) if batch_size % n == 0)
  return Mesh(np.asarray(devices[:count]), ('batch',))


def _shard_over_batch(state: SamplerState, mesh: Mesh) -> SamplerState:
  """The state with its batch dimensions split over all of `mesh`'s devices, the rest replicated."""

  def batch_at(dim: int) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(*(None,) * dim, mesh.axis_names))

  replicated = NamedSharding(mesh, PartitionSpec())
  conditioning = state.conditioning
  return dataclasses.replace(
      state,
      weights=jax.device_put(state.weights, replicated),
      conditioning=SamplerConditioning(
          gate_bias=jax.device_put(conditioning.gate_bias, batch_at(1)),
          local_frames=(None if conditioning.local_frames is None
                        else jax.device_put(conditioning.local_frames, batch_at(0)))),
      cache=SamplerCache(ring=jax.device_put(state.cache.ring, batch_at(1)),
                         time=jax.device_put(state.cache.time, replicated),
                         last_sample=jax.device_put(state.cache.last_sample, batch_at(0))))


def init_state(model: WaveNet, variables: Any, *, batch_size: int = 1,
               prompt: Optional[Array] = None, global_cond: Optional[Array] = None,
               local_cond: Optional[Array] = None,
               mesh: Optional[Mesh] = None) -> SamplerState:
  """Prepares a generation: weights, conditioning, and caches filled from the prompt.

  Args:
    model: the WaveNet.
    variables: its variables (from `model.init` or a checkpoint; boxed or plain).
    batch_size: number of sequences generated together.
    prompt: int32 μ-law classes [batch_size, prompt_len >= 1] that the generated
      samples continue; None starts from one silent sample.
    global_cond: int32 speaker ids [batch_size] (speaker-conditioned models).
    local_cond: float [batch_size, frames, local_cond_channels] at hop_length
      samples per frame from the prompt's first sample on (locally conditioned
      models); it must cover prompt_len + all samples to be generated.
    mesh: split the batch over all devices of this mesh (e.g. `batch_mesh(batch_size)`);
      None: one device. The samples are the same either way.

  Returns:
    The state for `generate_chunk`.
  """
  _check_inputs(model, batch_size, prompt, global_cond, local_cond)
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
  weights = models.step_weights(model, variables)
  if prompt_len > 1:
    ring = models.prefill_ring(model, weights.variables, prompt[:, :-1], global_cond, local_cond)
  else:
    ring = models.init_ring(model, batch_size)
  cache = SamplerCache(ring=ring, time=jnp.asarray(prompt_len - 1, jnp.int32),
                       last_sample=prompt[:, -1])
  if mesh is None:
    # The cache that generate_chunk returns is committed to the weights' device (a checkpoint's
    # weights are committed); commit the first one there too, or the second chunk compiles again.
    cache = jax.device_put(cache, weights.input_table.sharding)
  state = SamplerState(
      model=model,
      weights=weights,
      conditioning=SamplerConditioning(
          gate_bias=models.gate_bias(model, weights.variables, batch_size, global_cond),
          local_frames=None if local_cond is None else jnp.asarray(local_cond)),
      cache=cache)
  return state if mesh is None else _shard_over_batch(state, mesh)


# ---------------------------------------------------------------------------
# Sampling and the scan over time.


def sample_categorical(logits: Array, temperature: Array, uniform: Array) -> Array:
  """Draws from softmax(logits / temperature) by inverting its cumulative distribution.

  Args:
    logits: float32 [batch, classes].
    temperature: float32 scalar > 0.
    uniform: float32 [batch] in [0, 1).

  Returns:
    int32 [batch]: class c such that cdf[c - 1] <= uniform * cdf[-1] < cdf[c].
  """
  scaled = (logits - jnp.max(logits, axis=-1, keepdims=True)) / temperature
  cdf = jnp.cumsum(jnp.exp(scaled), axis=-1)
  threshold = uniform[:, None] * cdf[:, -1:]
  # Rounding can put threshold at cdf[-1] (probability ~2^-24); keep the class in range.
  return jnp.minimum(jnp.sum(cdf <= threshold, axis=-1), logits.shape[-1] - 1).astype(jnp.int32)


# choose(carry, time, logits [batch, num_classes], step input) -> (carry, x[time + 1] int32
# [batch], step output): picks the next input (sampling, or teacher forcing).
ChooseFn = Callable[[Any, Array, Array, Any], tuple[Any, Array, Any]]


def _current_row(block: Array, position: Array, block_size: int,
                 draw: Callable[[Array], Array]) -> tuple[Array, Array]:
  """Row `position % block_size` of the block of rows holding `position`.

  Blocks cover positions [i * block_size, (i + 1) * block_size); `draw(i)` makes
  block i ([batch, block_size, ...]) and is called when `position` enters it.

  Returns:
    (the block holding `position`, its row [batch, ...]).
  """
  block = jax.lax.cond(position % block_size == 0, draw, lambda _: block, position // block_size)
  return block, jax.lax.dynamic_index_in_dim(block, position % block_size, axis=1,
                                             keepdims=False)


def _scan_steps(model: WaveNet, weights: StepWeights, conditioning: SamplerConditioning,
                cache: SamplerCache, num_steps: int, choose: ChooseFn, choose_carry: Any,
                step_inputs: Any = None) -> tuple[SamplerCache, Any]:
  """Runs `num_steps` cached steps; `choose` picks each next input from the logits.

  Returns:
    (cache after the steps, the stacked per-step outputs of `choose`, time-major).
  """
  frames = conditioning.local_frames

  def upsample_frame(frame_index: Array) -> Array:
    return models.upsample(model, weights,
                           jax.lax.dynamic_slice_in_dim(frames, frame_index, 1, axis=1))

  def body(carry, step_input):
    cache, local_block, choose_carry = carry
    local_feature = None
    if frames is not None:
      local_block, local_feature = _current_row(local_block, cache.time, model.hop_length,
                                                upsample_frame)
    ring, logits = models.step(model, weights, conditioning.gate_bias, cache.ring, cache.time,
                               cache.last_sample, local_feature)
    choose_carry, next_sample, output = choose(choose_carry, cache.time, logits, step_input)
    cache = SamplerCache(ring=ring, time=cache.time + 1, last_sample=next_sample)
    return (cache, local_block, choose_carry), output

  local_block = None if frames is None else upsample_frame(cache.time // model.hop_length)
  (cache, _, _), outputs = jax.lax.scan(body, (cache, local_block, choose_carry), step_inputs,
                                        length=num_steps, unroll=SCAN_UNROLL)
  return cache, outputs


@functools.partial(jax.jit, static_argnums=(0, 6, 7), donate_argnums=3)
def _generate_chunk(model: WaveNet, weights: StepWeights, conditioning: SamplerConditioning,
                    cache: SamplerCache, rng: Array, temperature: Array, num_samples: int,
                    greedy: bool) -> tuple[SamplerCache, Array]:
  batch_size = cache.last_sample.shape[0]

  def draw_noise(block_index: Array) -> Array:
    """Uniforms of samples [i * NOISE_BLOCK, (i + 1) * NOISE_BLOCK): [batch, NOISE_BLOCK]."""
    return jax.random.uniform(jax.random.fold_in(rng, block_index), (batch_size, NOISE_BLOCK))

  def choose(noise_block, time, logits, _):
    if greedy:
      next_sample = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    else:
      noise_block, uniform = _current_row(noise_block, time + 1, NOISE_BLOCK, draw_noise)
      next_sample = sample_categorical(logits, temperature, uniform)
    return noise_block, next_sample, next_sample

  noise_block = None if greedy else draw_noise((cache.time + 1) // NOISE_BLOCK)
  cache, samples = _scan_steps(model, weights, conditioning, cache, num_samples, choose,
                               noise_block)
  return cache, samples.T


def _check_local_frames_cover(state: SamplerState, num_times: int) -> None:
  """Raises unless the local features cover times 0 .. num_times - 1."""
  frames = state.conditioning.local_frames
  if frames is not None and num_times > frames.shape[1] * state.model.hop_length:
    raise ValueError(
        f'local_cond has {frames.shape[1]} frames of {state.model.hop_length} samples: too few '
        f'for {num_times} samples (the prompt, or one silent sample, and the generated ones).')


def generate_chunk(state: SamplerState, rng: Array, num_samples: int,
                   temperature: float = 1.0) -> tuple[SamplerState, Array]:
  """Generates the next `num_samples` samples; compiled once per chunk size.

  Args:
    state: from `init_state` or the previous `generate_chunk`; consumed.
    rng: PRNG key; pass the same key to every chunk of one generation (the noise
      of each sample is keyed by its absolute position).
    num_samples: samples to generate in this chunk.
    temperature: softmax temperature; 0 picks the most likely class (greedy).

  Returns:
    (next state, int32 μ-law classes [batch, num_samples]).
  """
  if num_samples < 1:
    raise ValueError(f'num_samples must be >= 1, got {num_samples}.')
  if temperature < 0:
    raise ValueError(f'temperature must be >= 0, got {temperature}.')
  _check_local_frames_cover(state, int(state.cache.time) + num_samples)
  cache, samples = _generate_chunk(state.model, state.weights, state.conditioning, state.cache,
                                   rng, jnp.float32(temperature), num_samples, temperature == 0)
  return dataclasses.replace(state, cache=cache), samples


def generate(model: WaveNet, variables: Any, rng: Array, *, num_samples: int,
             batch_size: int = 1, temperature: float = 1.0, prompt: Optional[Array] = None,
             global_cond: Optional[Array] = None, local_cond: Optional[Array] = None,
             mesh: Optional[Mesh] = None) -> Array:
  """Samples from a WaveNet with the cached (fast) algorithm.

  Args:
    model: the WaveNet.
    variables: its variables (boxed or plain).
    rng: PRNG key of the sampling noise.
    num_samples: samples to generate after the prompt.
    batch_size: number of sequences (must match the prompt and conditioning).
    temperature: softmax temperature; 0 is greedy argmax.
    prompt: int32 μ-law classes [batch_size, prompt_len] to continue; None starts
      from one silent sample.
    global_cond: int32 speaker ids [batch_size].
    local_cond: float [batch_size, frames, local_cond_channels] covering
      prompt_len + num_samples samples at hop_length samples per frame.
    mesh: split the batch over this mesh's devices (see `init_state`).

  Returns:
    int32 μ-law classes [batch_size, num_samples]: the samples after the prompt.
  """
  state = init_state(model, variables, batch_size=batch_size, prompt=prompt,
                     global_cond=global_cond, local_cond=local_cond, mesh=mesh)
  _, samples = generate_chunk(state, rng, num_samples, temperature)
  return samples


@functools.partial(jax.jit, static_argnums=0)
def _teacher_forced_logits(model: WaveNet, weights: StepWeights,
                           conditioning: SamplerConditioning, cache: SamplerCache,
                           next_inputs: Array) -> Array:

  def choose(_, time, logits, next_input):
    return None, next_input, logits

  _, logits = _scan_steps(model, weights, conditioning, cache, next_inputs.shape[0], choose,
                          None, next_inputs)
  return jnp.swapaxes(logits, 0, 1)


def cached_logits(model: WaveNet, variables: Any, audio: Array,
                  global_cond: Optional[Array] = None,
                  local_cond: Optional[Array] = None) -> Array:
  """Teacher-forced logits of the cached step; equal to `model.apply(variables, audio, ...)`.

  Args:
    audio: int32 μ-law classes [batch, time].
    global_cond, local_cond: as for the model.

  Returns:
    float32 logits [batch, time, num_classes]; logits[:, t] predicts audio[:, t + 1].
  """
  audio = jnp.asarray(audio, jnp.int32)
  state = init_state(model, variables, batch_size=audio.shape[0], prompt=audio[:, :1],
                     global_cond=global_cond, local_cond=local_cond)
  _check_local_frames_cover(state, audio.shape[1])
  next_inputs = jnp.concatenate([audio[:, 1:], audio[:, -1:]], axis=1).T
  return _teacher_forced_logits(model, state.weights, state.conditioning, state.cache,
                                next_inputs)
