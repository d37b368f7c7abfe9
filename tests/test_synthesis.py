"""Tests of wavenet_jax/synthesis.py: chunked, folded and streamed generation, speakers."""
import jax
import numpy as np
import pytest

from wavenet_jax import mulaw
from wavenet_jax import sampler
from wavenet_jax import synthesis
from wavenet_jax.models import WaveNet

HOP = 4
N_MELS = 3
SPEAKERS = ('ann', 'ben', 'cy')


def _model(conditioning: str) -> WaveNet:
  mel = dict(local_cond_channels=N_MELS, hop_length=HOP, upsample_scales=(2, 2))
  speaker = dict(num_speakers=len(SPEAKERS), speaker_embedding_dim=4)
  extra = {'speaker': speaker, 'mel': mel, 'speaker_mel': {**speaker, **mel},
           'none': {}}[conditioning]
  return WaveNet(num_layers=6, num_stacks=2, residual_channels=8, gate_channels=16,
                 skip_channels=16, **extra)


def _inputs(model: WaveNet, batch_size: int, num_samples: int):
  """(variables, global_cond, local_cond covering 1 + num_samples samples)."""
  rng = np.random.default_rng(0)
  global_cond = local_cond = None
  if model.num_speakers:
    global_cond = rng.integers(0, model.num_speakers, batch_size).astype(np.int32)
  if model.local_cond_channels:
    frames = -(-(1 + num_samples) // HOP)
    local_cond = rng.normal(size=(batch_size, frames, N_MELS)).astype(np.float32)
  audio = np.zeros((1, HOP), np.int32)
  init_local = None if local_cond is None else local_cond[:1, :1]
  init_global = None if global_cond is None else global_cond[:1]
  variables = model.init(jax.random.key(1), audio, init_global, init_local)
  return variables, global_cond, local_cond


@pytest.mark.parametrize('conditioning', ['none', 'speaker', 'mel'])
def test_chunked_output_equals_one_call(conditioning):
  model = _model(conditioning)
  variables, global_cond, local_cond = _inputs(model, batch_size=2, num_samples=50)
  progress = []
  kwargs = dict(num_samples=50, batch_size=2, global_cond=global_cond, local_cond=local_cond)
  chunked = synthesis.synthesize(model, variables, jax.random.key(2), chunk_size=7,
                                 on_progress=progress.append, **kwargs)
  whole = synthesis.synthesize(model, variables, jax.random.key(2), chunk_size=50, **kwargs)
  assert chunked.shape == (2, 51) and chunked.dtype == np.float32
  np.testing.assert_array_equal(chunked, whole)
  assert [report.done for report in progress] == [7, 14, 21, 28, 35, 42, 49, 50]
  assert all(report.total == 50 for report in progress)
  assert np.all(np.abs(chunked) <= 1.0) and not np.all(chunked == chunked[:, :1])


def test_mel_frames_past_the_output_change_nothing():
  # The last chunk runs at full size past the end: synthesize repeats the last frame over
  # that overhang, and frames beyond the output never reach it.
  model = _model('mel')
  variables, _, local_cond = _inputs(model, batch_size=1, num_samples=21)
  extra = np.random.default_rng(5).normal(size=(1, 9, N_MELS)).astype(np.float32)
  exact = synthesis.synthesize(model, variables, jax.random.key(3), num_samples=21,
                               local_cond=local_cond, chunk_size=8)
  longer = synthesis.synthesize(model, variables, jax.random.key(3), num_samples=21,
                                local_cond=np.concatenate([local_cond, extra], axis=1),
                                chunk_size=8)
  assert exact.shape == (1, 22)
  np.testing.assert_array_equal(exact, longer)


def test_nothing_to_generate_is_an_error():
  model = _model('none')
  variables, _, _ = _inputs(model, batch_size=1, num_samples=1)
  with pytest.raises(ValueError, match=r'num_samples \(0\)'):
    synthesis.synthesize(model, variables, jax.random.key(0), num_samples=0)


def _row_waveform(model, variables, rng, local_cond, start, end, **kwargs):
  """float32 [(end - start) * HOP]: frames [start, end) generated alone as a batch of one.

  With the given key and the noise of its place; led by its silent start sample.
  """
  classes = sampler.generate(model, variables, rng, num_samples=(end - start) * HOP - 1,
                             local_cond=local_cond[:, start:end],
                             noise_offset=np.array([start * HOP], np.int32), **kwargs)
  return mulaw.decode(np.concatenate([[model.silence_class], np.asarray(classes[0])]))


def _folded(model, variables, local_cond, rng, segments, overlap_frames, crossfade=3,
            global_cond=None, temperature=1.0):
  """synthesize() folded, for local_cond's whole length."""
  return synthesis.synthesize(
      model, variables, rng, num_samples=local_cond.shape[1] * HOP - 1,
      batch_size=len(local_cond), temperature=temperature, global_cond=global_cond,
      local_cond=local_cond, chunk_size=20, segments=segments, overlap_frames=overlap_frames,
      crossfade=crossfade)


@pytest.mark.parametrize('temperature', [1.0, 0.0])
def test_folded_output_is_the_joined_segments_each_generated_alone(temperature):
  """Outside the crossfades, segment k of clip b is its frames generated as a batch of one.

  Alone, with clip b's key and the noise of its place (`noise_offset`); speakers and
  temperature carry over. The first segment is the start of one-sequence generation.
  """
  model = _model('speaker_mel')
  variables, global_cond, local_cond = _inputs(model, batch_size=2, num_samples=60)
  local_cond = local_cond[:, :15]  # 15 frames: segments [0, 5), [5, 10), [10, 15).
  rng = jax.random.key(4)
  folded = _folded(model, variables, local_cond, rng, segments=3, overlap_frames=2,
                   global_cond=global_cond, temperature=temperature)
  assert folded.shape == (2, 15 * HOP) and folded.dtype == np.float32
  assert np.all(np.isfinite(folded)) and np.all(np.abs(folded) <= 1)
  plan = synthesis.fold_plan(15, 3, 2)
  assert plan.bounds == (0, 5, 10, 15) and plan.starts == (0, 3, 8)
  keys = sampler.row_keys(rng, 2)
  for clip in range(2):
    for start, bound, end in zip(plan.starts, plan.bounds, plan.bounds[1:]):
      alone = _row_waveform(model, variables, keys[clip:clip + 1], local_cond[clip:clip + 1],
                            start, end, temperature=temperature,
                            global_cond=global_cond[clip:clip + 1])
      own = (end - start) * HOP - (3 if end < 15 else 0)  # Up to the next crossfade.
      np.testing.assert_array_equal(folded[clip, bound * HOP:start * HOP + own],
                                    alone[(bound - start) * HOP:own],
                                    err_msg=f'clip {clip}, segment from frame {bound}')
  one_sequence = synthesis.synthesize(model, variables, rng, num_samples=15 * HOP - 1,
                                      batch_size=2, temperature=temperature,
                                      global_cond=global_cond, local_cond=local_cond)
  np.testing.assert_array_equal(folded[:, :5 * HOP - 3], one_sequence[:, :5 * HOP - 3])


def test_one_segment_is_one_sequence_generation():
  model = _model('mel')
  variables, _, local_cond = _inputs(model, batch_size=2, num_samples=40)
  kwargs = dict(num_samples=37, batch_size=2, local_cond=local_cond, chunk_size=9)
  one_sequence = synthesis.synthesize(model, variables, jax.random.key(5), **kwargs)
  for overlap_frames in (0, 3):
    np.testing.assert_array_equal(
        synthesis.synthesize(model, variables, jax.random.key(5), segments=1,
                             overlap_frames=overlap_frames, **kwargs), one_sequence)


def test_crossfade_blends_the_end_of_the_warm_up():
  """With the warm-up generated alone known, the crossfade samples are the linear blend."""
  model = _model('mel')
  variables, _, local_cond = _inputs(model, batch_size=1, num_samples=40)
  local_cond = local_cond[:, :10]
  rng = jax.random.key(6)
  hard = _folded(model, variables, local_cond, rng, segments=2, overlap_frames=2, crossfade=0)
  faded = _folded(model, variables, local_cond, rng, segments=2, overlap_frames=2, crossfade=3)
  join = 5 * HOP
  np.testing.assert_array_equal(faded[:, :join - 3], hard[:, :join - 3])
  np.testing.assert_array_equal(faded[:, join:], hard[:, join:])
  # Segment 1's row: frames [3, 10), the join at its sample 2 * HOP.
  warm_up = _row_waveform(model, variables, sampler.row_keys(rng, 1), local_cond, 3, 10)
  rising = np.arange(1, 4) / 4
  np.testing.assert_allclose(faded[0, join - 3:join], (1 - rising) * hard[0, join - 3:join]
                             + rising * warm_up[2 * HOP - 3:2 * HOP], atol=1e-6)


@pytest.mark.parametrize('segments, overlap_frames, message', [
    (0, 2, r'segments must be in \[1, 10\]'),
    (11, 2, r'segments must be in \[1, 10\] \(at most one per mel frame of the 10-frame'),
    (2, -1, 'overlap_frames must be >= 0'),
])
def test_segments_the_length_cannot_take_are_errors(segments, overlap_frames, message):
  model = _model('mel')
  variables, _, local_cond = _inputs(model, batch_size=1, num_samples=40)
  with pytest.raises(ValueError, match=message):
    _folded(model, variables, local_cond[:, :10], jax.random.key(0), segments, overlap_frames)


def test_folding_needs_a_vocoder_and_no_prompt():
  model = _model('none')
  variables, _, _ = _inputs(model, batch_size=1, num_samples=8)
  with pytest.raises(ValueError, match='needs local conditioning'):
    synthesis.synthesize(model, variables, jax.random.key(0), num_samples=8, segments=2)


def test_default_segments_fill_the_devices_and_bound_the_warm_up():
  cpus = [jax.devices('cpu')[0]] * 2  # Two CPU devices: 16 rows each.
  assert synthesis.default_segments(625, 1, 4, cpus) == 32
  assert synthesis.default_segments(625, 3, 4, cpus) == 10  # 32 // 3 = 10 rows per clip.
  assert synthesis.default_segments(625, 5, 4, cpus) == 6  # 6 x 5 = 30 splits over 2.
  assert synthesis.default_segments(100, 1, 4, cpus) == 6  # Segments >= 16 frames.
  assert synthesis.default_segments(3, 1, 0, cpus) == 2  # 3 would run on one device.
  assert synthesis.default_segments(10, 64, 4, cpus) == 1


@pytest.mark.parametrize('arrival', ['one_at_a_time', 'bursts', 'all_at_once'])
def test_stream_equals_the_one_shot_call(arrival):
  model = _model('speaker_mel')
  variables, global_cond, local_cond = _inputs(model, batch_size=1, num_samples=70)
  frames = local_cond[0]  # [18, N_MELS]
  cuts = {'one_at_a_time': range(1, len(frames)), 'bursts': [3, 4, 9, 15],
          'all_at_once': []}[arrival]
  pieces = list(synthesis.stream(model, variables, jax.random.key(8),
                                 iter(np.split(frames, cuts)), temperature=0.7,
                                 global_cond=global_cond))
  assert all(piece.shape == (HOP,) and piece.dtype == np.float32 for piece in pieces)
  one_shot = synthesis.synthesize(model, variables, jax.random.key(8),
                                  num_samples=len(frames) * HOP - 1, temperature=0.7,
                                  global_cond=global_cond, local_cond=local_cond)
  np.testing.assert_array_equal(np.concatenate(pieces), one_shot[0])


def test_stream_yields_each_frame_s_audio_before_the_next_frame_arrives():
  model = _model('mel')
  variables, _, local_cond = _inputs(model, batch_size=1, num_samples=20)
  arrived = []

  def frames():
    for frame in local_cond[0]:
      arrived.append(frame)
      yield frame

  for index, _ in enumerate(synthesis.stream(model, variables, jax.random.key(0), frames())):
    assert len(arrived) == index + 1


def test_stream_rejects_frames_of_the_wrong_shape():
  model = _model('mel')
  variables, _, _ = _inputs(model, batch_size=1, num_samples=8)
  with pytest.raises(ValueError, match=r'a mel frame must be float \[3\] or a burst'):
    list(synthesis.stream(model, variables, jax.random.key(0), [np.zeros(N_MELS + 1)]))
