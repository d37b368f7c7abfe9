"""Tests of the WaveNet Linen model (wavenet_jax/models.py): shapes, causality, receptive field."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wavenet_jax import WaveNet, dilations, receptive_field

NUM_CLASSES = 32
HOP = 4
LOCAL_CHANNELS = 3

CONDITIONINGS = {
    'unconditional': {},
    'global': {'num_speakers': 3},
    'local_transposed': {'local_cond_channels': LOCAL_CHANNELS, 'hop_length': HOP,
                         'upsample_scales': (2, 2)},
    'local_repeat': {'local_cond_channels': LOCAL_CHANNELS, 'hop_length': HOP,
                     'upsample_method': 'repeat'},
    # Projected at frame rate to 2 channels before upsampling.
    'local_projected': {'local_cond_channels': LOCAL_CHANNELS, 'hop_length': HOP,
                        'upsample_scales': (2, 2), 'local_cond_projection': 2},
}


def tiny_model(kernel_size: int = 2, dtype=jnp.float32, **conditioning) -> WaveNet:
  return WaveNet(num_layers=6, num_stacks=2, kernel_size=kernel_size, residual_channels=8,
                 gate_channels=16, skip_channels=16, num_classes=NUM_CLASSES, dtype=dtype,
                 **conditioning)


def model_inputs(model: WaveNet, batch_size: int, time: int, seed: int = 0):
  """Random (audio int32 [batch, time], global_cond or None, local_cond or None)."""
  keys = jax.random.split(jax.random.key(seed), 3)
  audio = jax.random.randint(keys[0], (batch_size, time), 0, model.num_classes)
  global_cond = local_cond = None
  if model.num_speakers:
    global_cond = jax.random.randint(keys[1], (batch_size,), 0, model.num_speakers)
  if model.local_cond_channels:
    frames = -(-time // model.hop_length)
    local_cond = jax.random.normal(keys[2], (batch_size, frames, model.local_cond_channels))
  return audio, global_cond, local_cond


def test_dilations_and_receptive_field():
  assert dilations(6, 2) == (1, 2, 4, 1, 2, 4)
  assert receptive_field(20, 2, 2) == 2 * 1023 + 1
  assert receptive_field(6, 2, 3) == 2 * 2 * 7 + 1
  assert tiny_model().receptive_field == 15
  with pytest.raises(ValueError, match='multiple of num_stacks'):
    dilations(5, 2)


@pytest.mark.parametrize('name', CONDITIONINGS)
def test_output_shape_and_causality(name):
  """Changing x[t'] for t' > t leaves logits[:, t] unchanged (and changes later ones)."""
  model = tiny_model(**CONDITIONINGS[name])
  audio, global_cond, local_cond = model_inputs(model, 2, 24)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  logits = model.apply(variables, audio, global_cond, local_cond)
  assert logits.shape == (2, 24, NUM_CLASSES) and logits.dtype == jnp.float32
  changed_at = 13
  changed = audio.at[:, changed_at].set((audio[:, changed_at] + 1) % NUM_CLASSES)
  changed_logits = model.apply(variables, changed, global_cond, local_cond)
  np.testing.assert_array_equal(changed_logits[:, :changed_at], logits[:, :changed_at])
  assert np.abs(changed_logits[:, changed_at] - logits[:, changed_at]).max() > 1e-4


@pytest.mark.parametrize('kernel_size', [2, 3])
def test_receptive_field(kernel_size):
  """logits[:, t] depends on x[t - rf + 1] and on no earlier sample."""
  model = tiny_model(kernel_size)
  rf = model.receptive_field
  time = rf + 5
  audio, _, _ = model_inputs(model, 1, time)
  variables = model.init(jax.random.key(1), audio)
  last = model.apply(variables, audio)[:, -1]

  def last_logits_after_changing(position):
    changed = audio.at[:, position].set((audio[:, position] + 7) % NUM_CLASSES)
    return model.apply(variables, changed)[:, -1]

  # The oldest sample's influence passes through every layer and can be small: any change counts.
  assert np.abs(last_logits_after_changing(time - rf) - last).max() > 0
  for position in range(time - rf):
    np.testing.assert_array_equal(last_logits_after_changing(position), last)


def test_bfloat16_forward_is_finite():
  model = tiny_model(dtype=jnp.bfloat16, **CONDITIONINGS['local_transposed'])
  audio, global_cond, local_cond = model_inputs(model, 2, 16)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  logits = model.apply(variables, audio, global_cond, local_cond)
  assert logits.dtype == jnp.float32
  assert np.isfinite(np.asarray(logits)).all()


def test_bad_conditioning_raises_one_line_errors():
  model = tiny_model(**CONDITIONINGS['global'])
  audio, global_cond, _ = model_inputs(model, 2, 8)
  variables = model.init(jax.random.key(1), audio, global_cond)
  with pytest.raises(ValueError, match='global_cond'):
    model.apply(variables, audio)
  with pytest.raises(ValueError, match='local_cond given'):
    model.apply(variables, audio, global_cond, jnp.zeros((2, 2, 3)))
  model = tiny_model(**{**CONDITIONINGS['local_projected'], 'local_cond_projection': -1})
  with pytest.raises(ValueError, match='local_cond_projection must be >= 0'):
    model.init(jax.random.key(1), *model_inputs(model, 1, 8))


def test_mulaw_sinusoid_embedding_orders_the_classes():
  """Row c depends smoothly on c: neighbouring classes start close, far ones apart."""
  model = WaveNet(num_layers=2, num_stacks=1, residual_channels=32, gate_channels=8,
                  skip_channels=8, embedding_init='mulaw_sinusoid')
  variables = nn.unbox(model.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32)))
  table = np.asarray(variables['params']['embedding']['embedding'])
  assert table.shape == (256, 32)
  assert abs(np.mean(table**2) - 1.0) < 0.2  # Unit variance per entry, like normal(1.0).
  def distance(a, b):
    return np.linalg.norm(table[a] - table[b])
  assert distance(100, 101) < 0.5 * distance(100, 140)
  assert distance(0, 1) < 0.5 * distance(0, 255)
  # The random phases differ with the key.
  other = nn.unbox(model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32)))
  assert not np.allclose(other['params']['embedding']['embedding'], table)


def test_unknown_embedding_init_is_an_error():
  with pytest.raises(ValueError, match="embedding_init must be one of .* got 'sine'"):
    tiny_model(embedding_init='sine').init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))


@pytest.mark.parametrize('name', ['local_transposed', 'local_repeat', 'local_projected'])
def test_each_frame_conditions_exactly_its_own_samples(name):
  """Frame k of the features reaches samples [k * hop, (k + 1) * hop) and no others; the
  upsampled features have the projection's channels where there is one."""
  model = tiny_model(**CONDITIONINGS[name])
  _, _, local_cond = model_inputs(model, 1, 6 * HOP)
  variables = model.init(jax.random.key(1), *model_inputs(model, 1, 6 * HOP))
  upsample = lambda f: model.apply(variables, f, method=lambda m, x: m.upsampler(x))
  upsampled = upsample(local_cond)
  channels = CONDITIONINGS[name].get('local_cond_projection', LOCAL_CHANNELS)
  assert upsampled.shape == (1, 6 * HOP, channels) == (1, 6 * HOP, model.conditioning_channels)
  frame = 2
  changed = upsample(local_cond.at[:, frame].add(1.0))
  differs = np.abs(np.asarray(changed - upsampled)).max(axis=(0, 2)) > 1e-6
  np.testing.assert_array_equal(np.flatnonzero(differs),
                                np.arange(frame * HOP, (frame + 1) * HOP))
