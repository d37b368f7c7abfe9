"""Tests of the persistent Pallas sampling kernel (wavenet_jax/pallas_sampler.py).

On a CPU the kernel runs in Pallas interpret mode: these check its semantics against the XLA
sampler (the same samples for the same key) and its Mosaic GPU lowering, which jax.export
runs without a GPU.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import pallas as pl

from test_models import CONDITIONINGS, model_inputs, tiny_model
from wavenet_jax import codecs, generate, pallas_sampler, sampler, synthesis

# Both heads, with speaker and with local conditioning.
MODELS = {
    'softmax_global': CONDITIONINGS['global'],
    'softmax_local': CONDITIONINGS['local_transposed'],
    'mixture_global_local': {**CONDITIONINGS['global'], **CONDITIONINGS['local_repeat'],
                             'local_cond_projection': 2, 'output': 'mixture_of_logistics'},
}


def model_and_inputs(name, batch_size, time):
  model = tiny_model(**MODELS[name])
  audio, global_cond, local_cond = model_inputs(model, batch_size, time)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  return model, variables, audio, {'global_cond': global_cond, 'local_cond': local_cond}


def both_kernels(model, variables, num_samples, **kwargs):
  """generate's samples with kernel='xla' and with kernel='pallas'."""
  return [np.asarray(generate(model, variables, jax.random.key(3), num_samples=num_samples,
                              kernel=kernel, **kwargs)) for kernel in ('xla', 'pallas')]


def test_sampled_sequences_equal_the_xla_samplers():
  """Fast tier: a speaker-conditioned model sampled from silence, batch 2."""
  model, variables, _, conditioning = model_and_inputs('softmax_global', 2, 4)
  xla, pallas = both_kernels(model, variables, 32, batch_size=2, **conditioning)
  np.testing.assert_array_equal(pallas, xla)


@pytest.mark.slow
@pytest.mark.parametrize('temperature', [0.0, 1.0])
@pytest.mark.parametrize('name', MODELS)
def test_samples_equal_the_xla_samplers_over_hundreds_of_steps(name, temperature):
  """Greedy and sampled, both heads, speaker and local conditioning, two batch tiles."""
  num_samples = 200
  model, variables, audio, conditioning = model_and_inputs(name, 2, num_samples + 9)
  prompt = audio[:, :9]
  xla = generate(model, variables, jax.random.key(3), num_samples=num_samples, batch_size=2,
                 temperature=temperature, prompt=prompt, **conditioning)
  state = sampler.init_state(model, variables, batch_size=2, prompt=prompt, **conditioning)
  keys = sampler.row_keys(jax.random.key(3), 2)
  _, pallas = pallas_sampler.generate_chunk(
      state.decoder, state.conditioning, state.cache, keys, jnp.float32(temperature),
      num_samples=num_samples, greedy=temperature == 0, batch_tile=1)
  np.testing.assert_array_equal(pallas, xla)


@pytest.mark.slow
def test_chunks_continue_the_ring_and_the_noise_positions():
  """Chunks (across a noise block and frame boundaries) with noise offsets give one call's."""
  model, variables, audio, conditioning = model_and_inputs('mixture_global_local', 2, 300)
  offset = np.array([0, 1000], np.int32)
  xla = generate(model, variables, jax.random.key(3), num_samples=280, batch_size=2,
                 noise_offset=offset, **conditioning)
  state = sampler.init_state(model, variables, batch_size=2, noise_offset=offset,
                             kernel='pallas', **conditioning)
  chunks = []
  for chunk_size in (130, 150):
    state, chunk = sampler.generate_chunk(state, jax.random.key(3), chunk_size)
    chunks.append(chunk)
  assert int(state.cache.time) == 280
  np.testing.assert_array_equal(np.concatenate(chunks, axis=1), xla)


def test_widths_not_a_multiple_of_the_gpu_tile_are_refused_in_one_line(monkeypatch):
  model, variables, _, conditioning = model_and_inputs('softmax_global', 2, 4)
  gpu_model = tiny_model().clone(residual_channels=64, gate_channels=128, skip_channels=128)
  pallas_sampler.check_tiling(gpu_model)
  with pytest.raises(ValueError,
                     match=r"multiples of 64 \(its tile\), got \{'residual_channels': 8"):
    pallas_sampler.check_tiling(model)
  with pytest.raises(ValueError, match=r"\{'skip_channels': 96\}"):
    pallas_sampler.check_tiling(gpu_model.clone(skip_channels=96))
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')  # Checked before any work.
  with pytest.raises(ValueError, match='multiples of 64'):
    sampler.init_state(model, variables, batch_size=2, kernel='pallas', **conditioning)
  state = sampler.init_state(model, variables, batch_size=2, **conditioning)
  with pytest.raises(ValueError, match='batch_tile=3 must divide the batch size 2'):
    pallas_sampler.generate_chunk(state.decoder, state.conditioning, state.cache,
                                  sampler.row_keys(jax.random.key(0), 2), jnp.float32(1.0),
                                  num_samples=4, greedy=False, batch_tile=3, interpret=True)


def test_unknown_kernels_and_meshes_are_refused_in_one_line():
  model, variables, _, conditioning = model_and_inputs('softmax_global', 2, 4)
  with pytest.raises(ValueError, match=r"kernel must be one of \('xla', 'pallas'\), got 'cuda'"):
    generate(model, variables, jax.random.key(0), num_samples=4, batch_size=2, kernel='cuda',
             **conditioning)
  two_devices = jax.sharding.Mesh(np.asarray(jax.devices()[:1] * 2), ('batch',))
  with pytest.raises(ValueError, match='one device, not a mesh of 2'):
    sampler.init_state(model, variables, batch_size=2, mesh=two_devices, kernel='pallas',
                       **conditioning)


def test_the_draws_written_for_mosaic_gpu_equal_the_heads():
  """The argmax (max and first index) and the PCM encoding without floor give jnp's results."""
  ops = pallas_sampler._InterpretOps(pl.ds(0, 3))
  x = jnp.array([[1.0, 3.0, 3.0, -1.0], [-jnp.inf, -2.0, -2.5, -2.0], [0.0, 0.0, 0.0, 0.0]])
  np.testing.assert_array_equal(pallas_sampler._argmax(ops, x), jnp.argmax(x, axis=-1))
  values = jnp.concatenate([jnp.linspace(-1.2, 1.2, 4001), jnp.array([-1.0, 1.0, -0.5 / 8])])
  for num_classes in (16, 256):
    np.testing.assert_array_equal(pallas_sampler._pcm_encode(values, num_classes),
                                  codecs.pcm_encode(values, num_classes))


def test_the_gpu_cumulative_sum_keeps_16_bits_through_bf16_matmuls():
  """The draw's cumulative sum on a GPU: matmuls whose inputs are rounded to bf16."""
  x = jnp.exp(jax.random.normal(jax.random.key(0), (64, 256)) * 3)
  triangle = jnp.triu(jnp.ones((256, 256), jnp.float32))
  by_triangle = lambda part: jnp.dot(part.astype(jnp.bfloat16).astype(jnp.float32), triangle,
                                     precision='highest')
  cdf = pallas_sampler._triangular_cumsum(x, by_triangle)
  exact = np.cumsum(np.asarray(x, np.float64), axis=-1)
  np.testing.assert_allclose(cdf, exact, rtol=2**-15)
  assert np.max(np.abs(by_triangle(x) / exact - 1)) > 2**-12  # bf16 alone would not do.


@pytest.mark.slow
@pytest.mark.parametrize('name,dtype,greedy,widths', [
    # B1's widths and classes (its shared memory), 4 of its 30 layers.
    ('softmax_global', jnp.bfloat16, False, {'skip_channels': 256, 'num_classes': 256}),
    ('mixture_global_local', jnp.float32, True, {'skip_channels': 128}),
])
def test_kernel_lowers_for_cuda_on_this_host(name, dtype, greedy, widths):
  """Mosaic GPU's lowering runs without a GPU (jax.export for 'cuda', which also checks that
  the kernel fits in shared memory): a model of GPU-tiled widths, batch 3 padded to 64."""
  model = tiny_model(dtype=dtype, **MODELS[name]).clone(
      residual_channels=64, gate_channels=128, num_layers=4, **widths)
  audio, global_cond, local_cond = model_inputs(model, 3, 8)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  state = sampler.init_state(model, variables, batch_size=3, global_cond=global_cond,
                             local_cond=local_cond)
  exported = jax.export.export(jax.jit(lambda *args: pallas_sampler.generate_chunk(
      *args, num_samples=16, greedy=greedy, interpret=False)), platforms=['cuda'])(
          state.decoder, state.conditioning, state.cache, sampler.row_keys(jax.random.key(0), 3),
          jnp.float32(1.0))
  assert exported.platforms == ('cuda',)
  assert 'custom_call @mosaic_gpu' in exported.mlir_module()
  assert exported.out_avals[-1].shape == (3, 16)  # The samples of the batch, padding dropped.


@pytest.mark.slow
def test_streamed_vocoding_equals_the_xla_samplers():
  """synthesis.stream: one frame's window at a time (the features of frames after the first)."""
  model, variables, _, conditioning = model_and_inputs('mixture_global_local', 1, 40)
  pieces = {kernel: np.concatenate(list(synthesis.stream(
      model, variables, jax.random.key(8), iter(conditioning['local_cond'][0]),
      global_cond=conditioning['global_cond'], kernel=kernel))) for kernel in ('xla', 'pallas')}
  np.testing.assert_array_equal(pieces['pallas'], pieces['xla'])
