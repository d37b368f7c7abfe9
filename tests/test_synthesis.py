"""Tests of wavenet_jax/synthesis.py: chunked generation, the mel overhang, speakers."""
import jax
import numpy as np
import pytest

from wavenet_jax import synthesis
from wavenet_jax.models import WaveNet

HOP = 4
N_MELS = 3
SPEAKERS = ('ann', 'ben', 'cy')


def _model(conditioning: str) -> WaveNet:
  extra = {'speaker': dict(num_speakers=len(SPEAKERS), speaker_embedding_dim=4),
           'mel': dict(local_cond_channels=N_MELS, hop_length=HOP, upsample_scales=(2, 2)),
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


def test_speaker_by_name_or_id():
  assert synthesis.speaker_id('ben', SPEAKERS) == 1
  assert synthesis.speaker_id('2', SPEAKERS) == 2
  for unknown in ('dan', '3'):
    with pytest.raises(ValueError, match="known speakers \\(id: name\\): 0: ann, 1: ben, 2: cy"):
      synthesis.speaker_id(unknown, SPEAKERS)


def test_nothing_to_generate_is_an_error():
  model = _model('none')
  variables, _, _ = _inputs(model, batch_size=1, num_samples=1)
  with pytest.raises(ValueError, match=r'num_samples \(0\)'):
    synthesis.synthesize(model, variables, jax.random.key(0), num_samples=0)
