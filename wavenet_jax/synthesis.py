"""Generating audio from a trained model: conditioning inputs; chunked, folded, streamed.

The library behind `sample.py` and the trainer's periodic clips: runs the cached sampler
chunk by chunk so that memory stays bounded by
the caches and the output, handing each chunk's audio over (to be written as it comes) and
reporting progress as it goes.

Folded generation (vocoders: `synthesize(..., segments=N)`, after fatchord's WaveRNN): the
utterance's frames are cut into N segments, each extended backwards by `overlap_frames` of
warm-up (the segment's own past, generated and then discarded), and all segments run as one
batch of N rows (split over the devices like any batch); the rows are joined with a linear
crossfade of `crossfade` samples at the end of each warm-up. One sequence uses a fraction of
what a device can do (experiments/vocoder_cpu.py's model on one CPU core: 42,000 samples/s at
batch 1, 75,000 over a batch of 16), and only one device, so folding runs several times
faster (see experiments/results/folding/README.md). Every row draws the noise of its place
in the utterance (`sampler.init_state(noise_offset=...)`): N = 1 is one-sequence generation
sample for sample, the first segment is the start of it, and in the overlap a warm-up draws
the uniforms the segment before it draws at the same places (so the two may agree sample for
sample: the join is then exact).

Streaming (`stream`): mel frames in as they arrive, audio out, one hop per frame.

Generated classes become a waveform through the model's codec (`WaveNet.codec.decoder()`:
μ-law or 16-bit PCM, then, for a model trained with pre-emphasis, the inverse filter, its
state carried from chunk to chunk of each row), in generation order (folded rows before
their join: each segment's warm-up, 1,024 samples at the default overlap, also settles the
filter, 0.97^1024 ~ 1e-14).
"""
import dataclasses
import math
import time
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from wavenet_jax import audio as audio_lib
from wavenet_jax import distributions
from wavenet_jax import sampler
from wavenet_jax.models import WaveNet

# Folded generation: frames of warm-up before each segment (after the first), and samples of
# crossfade at the end of the warm-up. See experiments/results/folding/README.md.
DEFAULT_OVERLAP_FRAMES = 4
DEFAULT_CROSSFADE = 64
# The automatic number of segments (`default_segments`): rows per device of that platform
# (beyond them a CPU core gains little; an accelerator gains up to far larger batches), and
# segments at least this many overlaps long (warm-up at most a fifth of the work).
ROWS_PER_DEVICE = {'cpu': 16}
ROWS_PER_ACCELERATOR = 128
MIN_SEGMENT_OVERLAPS = 4


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




def _extend_frames(local_cond: np.ndarray, num_frames: int) -> np.ndarray:
  """float [batch, frames, channels] with its last frame repeated up to num_frames frames."""
  overhang = max(0, num_frames - local_cond.shape[1])
  return np.pad(local_cond, ((0, 0), (0, overhang), (0, 0)), mode='edge')


def _generate_rows(model: WaveNet, variables: Any, rng: jax.Array, *, num_samples: int,
                   batch_size: int, temperature: float, prompt: Optional[np.ndarray],
                   global_cond: Optional[np.ndarray], local_cond: Optional[np.ndarray],
                   noise_offset: Optional[np.ndarray], chunk_size: int,
                   on_progress: Optional[Callable[[Progress], None]],
                   on_chunk: Optional[Callable[[np.ndarray], None]],
                   mesh: Optional[Mesh], kernel: str) -> np.ndarray:
  """`synthesize` of independent rows (rng: one key or [batch_size] keys); arguments checked."""
  start = 1 if prompt is None else prompt.shape[1]
  chunk_size = min(chunk_size, num_samples)
  num_chunks = -(-num_samples // chunk_size)
  if local_cond is not None:
    # The last chunk runs at full size (no second compilation) and is trimmed, so the
    # features must reach past the end: repeat the last frame over the overhang.
    local_cond = _extend_frames(
        local_cond, audio_lib.num_mel_frames(start + num_chunks * chunk_size, model.hop_length))
  state = sampler.init_state(
      model, variables, batch_size=batch_size,
      prompt=None if prompt is None else jnp.asarray(prompt, jnp.int32),
      global_cond=None if global_cond is None else jnp.asarray(global_cond, jnp.int32),
      local_cond=None if local_cond is None else jnp.asarray(local_cond, jnp.float32),
      noise_offset=noise_offset, mesh=mesh, kernel=kernel)
  # The waveform starts with the prompt, or the sampler's silent start sample.
  lead = (np.full((batch_size, 1), model.silence_class, np.int32) if prompt is None
          else np.asarray(prompt, np.int32))
  pieces = []
  to_waveform = model.codec.decoder()
  began = time.perf_counter()
  for chunk in range(num_chunks):
    state, samples = sampler.generate_chunk(state, rng, chunk_size, temperature)
    done = min((chunk + 1) * chunk_size, num_samples)
    classes = np.asarray(samples)[:, :done - chunk * chunk_size]  # Blocks: honest progress.
    if chunk == 0:
      classes = np.concatenate([lead, classes], axis=1)
    pieces.append(to_waveform(classes))
    if on_chunk is not None:
      on_chunk(pieces[-1])
    if on_progress is not None:
      on_progress(Progress(done, num_samples, time.perf_counter() - began))
  return np.concatenate(pieces, axis=1)


@dataclasses.dataclass(frozen=True)
class FoldPlan:
  """Where the segments of a folded generation lie, in frames of the utterance.

  Attributes:
    bounds: [segments + 1]: segment k's own audio spans frames [bounds[k], bounds[k + 1]);
      bounds[0] = 0 and bounds[-1] = the utterance's frames.
    starts: [segments]: the first frame of segment k's row, max(0, bounds[k] - overlap):
      frames [starts[k], bounds[k]) are its warm-up.
  """
  bounds: tuple[int, ...]
  starts: tuple[int, ...]

  @property
  def segments(self) -> int:
    return len(self.starts)


def fold_plan(num_frames: int, segments: int, overlap_frames: int) -> FoldPlan:
  """Cuts num_frames frames into `segments` segments of (within a frame) equal length.

  Raises:
    ValueError: segments < 1, more segments than frames, or overlap_frames < 0.
  """
  if overlap_frames < 0:
    raise ValueError(f'overlap_frames must be >= 0, got {overlap_frames}.')
  if not 1 <= segments <= num_frames:
    raise ValueError(f'segments must be in [1, {num_frames}] (at most one per mel frame of the '
                     f'{num_frames}-frame utterance), got {segments}.')
  bounds = tuple(k * num_frames // segments for k in range(segments + 1))
  return FoldPlan(bounds=bounds,
                  starts=tuple(max(0, bound - overlap_frames) for bound in bounds[:-1]))


def default_segments(num_frames: int, batch_size: int, overlap_frames: int,
                     devices: Sequence[jax.Device]) -> int:
  """The number of segments that keeps `devices` busy without wasting work on warm-ups.

  As many as make ROWS_PER_DEVICE rows per device (ROWS_PER_ACCELERATOR on GPU and TPU) over
  the batch's clips, at most one per MIN_SEGMENT_OVERLAPS overlaps of frames, rounded down to
  fill every device evenly where the batch allows.

  Args:
    num_frames: mel frames of one utterance.
    batch_size: clips generated together (each folded into the segments).
    overlap_frames: warm-up frames of each segment.
    devices: those the rows are split over.
  """
  per_device = ROWS_PER_DEVICE.get(devices[0].platform, ROWS_PER_ACCELERATOR)
  segments = max(1, per_device * len(devices) // batch_size)
  segments = min(segments, num_frames, max(1, num_frames // max(1, MIN_SEGMENT_OVERLAPS
                                                                * overlap_frames)))
  step = len(devices) // math.gcd(batch_size, len(devices))  # Segments per even spread.
  return segments - segments % step if segments >= step else segments


def _fold(local_cond: np.ndarray, plan: FoldPlan, row_frames: int) -> np.ndarray:
  """float [batch, frames, channels] -> its rows [batch * segments, row_frames, channels].

  Row b * segments + k is clip b's frames from plan.starts[k] on; past the end the last frame
  repeats (those samples are trimmed).
  """
  padded = _extend_frames(local_cond, plan.starts[-1] + row_frames)
  rows = np.stack([padded[:, start:start + row_frames] for start in plan.starts], axis=1)
  return rows.reshape(-1, row_frames, local_cond.shape[2])


def _join(rows: np.ndarray, plan: FoldPlan, hop_length: int, length: int,
          crossfade: int) -> np.ndarray:
  """Folded rows float32 [batch * segments, n] -> the clips float32 [batch, length].

  Segment k's own samples follow a linear crossfade from segment k - 1 over the last
  `crossfade` samples of its warm-up (fewer if the warm-up is shorter).
  """
  rows = rows.reshape(-1, plan.segments, rows.shape[1])
  clips = np.empty((rows.shape[0], length), np.float32)
  for k, (start, begin, end) in enumerate(zip(plan.starts, plan.bounds, plan.bounds[1:])):
    start, begin, end = start * hop_length, begin * hop_length, min(end * hop_length, length)
    fade = max(0, min(crossfade, begin - start - 1))  # Not the row's silent start sample.
    segment = rows[:, k, begin - fade - start:end - start]
    if fade:
      rising = np.arange(1, fade + 1, dtype=np.float32) / (fade + 1)
      segment[:, :fade] = (1 - rising) * clips[:, begin - fade:begin] + rising * segment[:, :fade]
    clips[:, begin - fade:end] = segment
  return clips


def synthesize(model: WaveNet, variables: Any, rng: jax.Array, *, num_samples: int,
               batch_size: int = 1, temperature: float = 1.0,
               prompt: Optional[np.ndarray] = None, global_cond: Optional[np.ndarray] = None,
               local_cond: Optional[np.ndarray] = None, chunk_size: int = 8000,
               segments: int = 1, overlap_frames: int = DEFAULT_OVERLAP_FRAMES,
               crossfade: int = DEFAULT_CROSSFADE,
               on_progress: Optional[Callable[[Progress], None]] = None,
               on_chunk: Optional[Callable[[np.ndarray], None]] = None,
               mesh: Optional[Mesh] = None, kernel: str = 'xla') -> np.ndarray:
  """Generates audio in chunks of `chunk_size` samples (one compilation), optionally folded.

  Args:
    model, variables: the WaveNet and its variables.
    rng: PRNG key of the sampling noise (the result does not depend on chunk_size); clip b
      draws with key fold_in(rng, b), and so do its segments (see `sampler.row_keys`).
    num_samples: samples to generate after the prompt.
    batch_size: sequences generated together.
    temperature: the head's temperature (`Head.sample`): 0 (greedy) or finite and
      >= distributions.MIN_TEMPERATURE.
    prompt: int32 classes of the model's codec [batch_size, prompt_len] (`model.codec.encode`
      of the audio); None starts from one silent sample.
    global_cond: int32 speaker ids [batch_size].
    local_cond: float32 [batch_size, frames, n_mels] covering the prompt (or the
      silent start sample) and the generated samples.
    chunk_size: samples per compiled chunk (of each row when folded).
    segments: > 1 folds each clip into this many segments generated as one batch of
      batch_size * segments rows (locally conditioned models, no prompt; at most one
      segment per frame of the 1 + num_samples samples).
    overlap_frames: folded: frames of warm-up before each segment after the first.
    crossfade: folded: samples of crossfade at each join (at most the warm-up's).
    on_progress: called after every chunk (after on_chunk); folded, `done` counts the
      samples of the clip in proportion to the rows' progress.
    on_chunk: called after every chunk with its float32 [batch_size, n] waveform, the first
      one led by the prompt (or the silent start sample): the pieces, concatenated, are the
      returned waveform (to write a long output as it is generated); folded, called once
      with the whole joined waveform.
    mesh: split the rows (batch_size * segments) over this mesh's devices
      (`sampler.batch_mesh`); None: one device.
    kernel: how the sampler steps, 'xla' or 'pallas' (`sampler.init_state`).

  Returns:
    float32 [batch_size, start + num_samples] waveform (decoded with the model's codec,
    de-emphasised for a model trained with pre-emphasis): the prompt (or the one silent start
    sample) followed by the generated samples.
  """
  if num_samples < 1 or chunk_size < 1:
    raise ValueError(f'num_samples ({num_samples}) and chunk_size ({chunk_size}) must be >= 1.')
  distributions.check_temperature(temperature)
  common = dict(temperature=temperature, chunk_size=chunk_size, mesh=mesh, kernel=kernel)
  if segments == 1:
    return _generate_rows(model, variables, rng, num_samples=num_samples, batch_size=batch_size,
                          prompt=prompt, global_cond=global_cond, local_cond=local_cond,
                          noise_offset=None, on_progress=on_progress, on_chunk=on_chunk,
                          **common)
  if local_cond is None or prompt is not None:
    raise ValueError('segments > 1 (folded generation) needs local conditioning (a vocoder) '
                     'and no prompt.')
  if crossfade < 0:
    raise ValueError(f'crossfade must be >= 0, got {crossfade}.')
  hop = model.hop_length
  length = 1 + num_samples
  plan = fold_plan(audio_lib.num_mel_frames(length, hop), segments, overlap_frames)
  # Every row runs until the one that reaches furthest has its last sample.
  row_samples = max(min(end * hop, length) - start * hop
                    for start, end in zip(plan.starts, plan.bounds[1:]))
  clip_keys = sampler.row_keys(rng, batch_size)

  def on_rows_progress(rows_done: Progress) -> None:
    if on_progress is not None:
      on_progress(Progress(rows_done.done * num_samples // rows_done.total, num_samples,
                           rows_done.seconds))

  rows = _generate_rows(
      model, variables, clip_keys[np.repeat(np.arange(batch_size), segments)],
      num_samples=row_samples - 1, batch_size=batch_size * segments, prompt=None,
      global_cond=None if global_cond is None else np.repeat(global_cond, segments),
      local_cond=_fold(local_cond, plan, audio_lib.num_mel_frames(row_samples, hop)),
      noise_offset=np.tile(np.asarray(plan.starts, np.int32) * hop, batch_size),
      on_progress=on_rows_progress, on_chunk=None, **common)
  clips = _join(rows, plan, hop, length, crossfade)
  if on_chunk is not None:
    on_chunk(clips)
  return clips


def _frames_of(bursts: Iterable[np.ndarray], n_mels: int) -> Iterator[np.ndarray]:
  """The frames float32 [n_mels] of bursts of one ([n_mels]) or several ([k, n_mels])."""
  for burst in bursts:
    burst = np.asarray(burst, np.float32)
    if burst.ndim not in (1, 2) or burst.shape[-1] != n_mels:
      raise ValueError(f'a mel frame must be float [{n_mels}] or a burst [frames, {n_mels}], '
                       f'got {burst.shape}.')
    yield from burst.reshape(-1, n_mels)


def stream(model: WaveNet, variables: Any, rng: jax.Array, frames: Iterable[np.ndarray], *,
           temperature: float = 1.0, global_cond: Optional[np.ndarray] = None,
           kernel: str = 'xla') -> Iterator[np.ndarray]:
  """Vocodes mel frames as they arrive: hop_length samples of audio out per frame in.

  The upsampler spreads every frame over exactly its own hop_length samples (no look-ahead),
  so the audio of frame f is complete as soon as frame f is in: the latency is one hop
  (the frame's span) plus the time to generate it. Memory is constant (the caches and one
  frame), and one compilation serves every frame.

  For F frames the pieces, concatenated, equal `synthesize(model, variables, rng,
  num_samples=F * hop_length - 1, local_cond=all_frames[None], ...)[0]` (the silent start
  sample leads), however the frames arrive.

  Args:
    model, variables: a locally conditioned WaveNet and its variables.
    rng: PRNG key of the sampling noise.
    frames: an iterable of normalised log-mel frames (`features.LogMel`), each
      float [n_mels] or a burst float [k, n_mels].
    temperature: 0 (greedy) or finite and >= distributions.MIN_TEMPERATURE.
    global_cond: int32 [1], the speaker id (speaker-conditioned models).
    kernel: how the sampler steps, 'xla' or 'pallas' (`sampler.init_state`).

  Yields:
    float32 [hop_length] waveform per frame (decoded as `synthesize` decodes).
  """
  distributions.check_temperature(temperature)
  if model.local_cond_channels == 0:
    raise ValueError('stream needs a locally conditioned model (a vocoder).')
  hop = model.hop_length
  state = None
  # Each frame's chunk generates x[t + 1] for its times t; the last one waits for the next frame.
  held = np.full((1, 1), model.silence_class, np.int32)
  to_waveform = model.codec.decoder()
  for index, frame in enumerate(_frames_of(frames, model.local_cond_channels)):
    window = frame[None, None]  # [1, 1, n_mels]
    if state is None:
      state = sampler.init_state(
          model, variables, local_cond=jnp.asarray(window),
          global_cond=None if global_cond is None else jnp.asarray(global_cond, jnp.int32),
          kernel=kernel)
    else:
      state = sampler.replace_local_frames(state, window, index)
    state, samples = sampler.generate_chunk(state, rng, hop, temperature)
    classes = np.concatenate([held, np.asarray(samples)], axis=1)
    held = classes[:, -1:]
    yield to_waveform(classes[:, :-1])[0]
