"""Generating audio from a trained model: conditioning inputs and chunked generation.

The library behind `sample.py` and the trainer's periodic clips: resolves a speaker
given by name or id and runs the cached sampler chunk by chunk so that memory stays bounded by
the caches and the output, handing each chunk's audio over (to be written as it comes) and
reporting progress as it goes.
"""
import dataclasses
import math
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from wavenet_jax import mulaw
from wavenet_jax import sampler
from wavenet_jax.models import WaveNet

# The lowest positive temperature accepted. A subnormal one (< 1.2e-38) is flushed to 0 by
# XLA and 0 / 0 gives NaN probabilities (every sample class 0: a constant -1 waveform); any
# temperature this low is greedy in effect, so 0 (greedy) is the value for that.
MIN_TEMPERATURE = 1e-3


def speaker_id(speaker: str, speakers: tuple[str, ...]) -> int:
  """A speaker given by name or by id -> its id; ValueError naming the known speakers."""
  if speaker in speakers:
    return speakers.index(speaker)
  if speaker.isdigit() and int(speaker) < len(speakers):
    return int(speaker)
  raise ValueError(f'unknown speaker {speaker!r}; known speakers (id: name): '
                   + ', '.join(f'{i}: {name}' for i, name in enumerate(speakers)))


@dataclasses.dataclass(frozen=True)
class Progress:
  """Where a chunked generation stands.

  Attributes:
    done: samples generated so far (per batch element).
    total: samples to generate.
    seconds: wall time since the first chunk started (its compilation included).
  """
  done: int
  total: int
  seconds: float


def check_temperature(temperature: float) -> None:
  """Raises ValueError unless temperature is 0 (greedy) or finite and >= MIN_TEMPERATURE."""
  if not (temperature == 0 or (math.isfinite(temperature) and temperature >= MIN_TEMPERATURE)):
    raise ValueError(f'temperature must be 0 (greedy) or finite and >= {MIN_TEMPERATURE}, got '
                     f'{temperature}.')


def synthesize(model: WaveNet, variables: Any, rng: jax.Array, *, num_samples: int,
               batch_size: int = 1, temperature: float = 1.0,
               prompt: Optional[np.ndarray] = None, global_cond: Optional[np.ndarray] = None,
               local_cond: Optional[np.ndarray] = None, chunk_size: int = 8000,
               on_progress: Optional[Callable[[Progress], None]] = None,
               on_chunk: Optional[Callable[[np.ndarray], None]] = None,
               mesh: Optional[Mesh] = None) -> np.ndarray:
  """Generates audio in chunks of `chunk_size` samples (one compilation).

  Args:
    model, variables: the WaveNet and its variables.
    rng: PRNG key of the sampling noise (the result does not depend on chunk_size).
    num_samples: samples to generate after the prompt.
    batch_size: sequences generated together.
    temperature: softmax temperature: 0 (greedy) or finite and >= MIN_TEMPERATURE.
    prompt: int32 μ-law classes [batch_size, prompt_len]; None starts from one
      silent sample.
    global_cond: int32 speaker ids [batch_size].
    local_cond: float32 [batch_size, frames, n_mels] covering the prompt (or the
      silent start sample) and the generated samples.
    chunk_size: samples per compiled chunk.
    on_progress: called after every chunk (after on_chunk).
    on_chunk: called after every chunk with its float32 [batch_size, n] waveform, the first
      one led by the prompt (or the silent start sample): the pieces, concatenated, are the
      returned waveform (to write a long output as it is generated).
    mesh: split the batch over this mesh's devices (`sampler.batch_mesh`); None: one device.

  Returns:
    float32 [batch_size, start + num_samples] waveform: the prompt (or the one
    silent start sample) followed by the generated samples.
  """
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f'num_samples ({num_samples}) and chunk_size ({chunk_size}) must be >= 1.')
  check_temperature(temperature)
  start = 1 if prompt is None else prompt.shape[1]
  chunk_size = min(chunk_size, num_samples)
  num_chunks = -(-num_samples // chunk_size)
  if local_cond is not None:
    # The last chunk runs at full size (no second compilation) and is trimmed, so the
    # features must reach past the end: repeat the last frame over the overhang.
    needed_frames = -(-(start + num_chunks * chunk_size) // model.hop_length)
    overhang = max(0, needed_frames - local_cond.shape[1])
    local_cond = np.pad(local_cond, ((0, 0), (0, overhang), (0, 0)), mode='edge')
  state = sampler.init_state(
      model, variables, batch_size=batch_size,
      prompt=None if prompt is None else jnp.asarray(prompt, jnp.int32),
      global_cond=None if global_cond is None else jnp.asarray(global_cond, jnp.int32),
      local_cond=None if local_cond is None else jnp.asarray(local_cond, jnp.float32),
      mesh=mesh)
  # The waveform starts with the prompt, or the sampler's silent start sample.
  lead = (np.full((batch_size, 1), model.silence_class, np.int32) if prompt is None
          else np.asarray(prompt, np.int32))
  pieces = []
  began = time.perf_counter()
  for chunk in range(num_chunks):
    state, samples = sampler.generate_chunk(state, rng, chunk_size, temperature)
    done = min((chunk + 1) * chunk_size, num_samples)
    classes = np.asarray(samples)[:, :done - chunk * chunk_size]  # Blocks: honest progress.
    if chunk == 0:
      classes = np.concatenate([lead, classes], axis=1)
    pieces.append(mulaw.decode(classes))
    if on_chunk is not None:
      on_chunk(pieces[-1])
    if on_progress is not None:
      on_progress(Progress(done, num_samples, time.perf_counter() - began))
  return np.concatenate(pieces, axis=1)
