"""Tests of the persistent Pallas sampling kernel (wavenet_jax/pallas_sampler.py).

On a CPU the kernel runs in Pallas interpret mode: these check its semantics against the XLA
sampler (the same samples for the same key) and, where this jaxlib can run Mosaic GPU's
lowering without a GPU, its CUDA lowering.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_models import CONDITIONINGS, model_inputs, tiny_model
from wavenet_jax import generate, pallas_sampler, sampler, synthesis

# Both heads, with speaker and with local conditioning.
MODELS = {
    'softmax_global': CONDITIONINGS['global'],
    'softmax_local': CONDITIONINGS['local_transposed'],
    'mixture_global_local': {**CONDITIONINGS['global'], **CONDITIONINGS['local_repeat'],
                             'output': 'mixture_of_logistics'},
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
      num_samples=num_samples, greedy=temperature == 0, channel_tile=4, batch_tile=1)
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


def test_widths_not_a_multiple_of_the_tile_are_refused_in_one_line():
  model, variables, _, conditioning = model_and_inputs('softmax_global', 2, 4)
  pallas_sampler.check_tiling(model, 4)  # Residual 8, gate halves 8, skip 16.
  with pytest.raises(ValueError, match=r"channel_tile=16: .*\{'residual_channels': 8"):
    pallas_sampler.check_tiling(model, 16)
  with pytest.raises(ValueError, match='channel_tile=3'):
    pallas_sampler.check_tiling(model, 3)
  odd = tiny_model().clone(residual_channels=12)
  with pytest.raises(ValueError, match='multiples of it'):
    sampler.init_state(odd, odd.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32)),
                       kernel='pallas')
  state = sampler.init_state(model, variables, batch_size=2, **conditioning)
  with pytest.raises(ValueError, match='batch_tile=3 must divide the batch size 2'):
    pallas_sampler.generate_chunk(state.decoder, state.conditioning, state.cache,
                                  sampler.row_keys(jax.random.key(0), 2), jnp.float32(1.0),
                                  num_samples=4, greedy=False, batch_tile=3)


def test_unknown_kernels_and_meshes_are_refused_in_one_line():
  model, variables, _, conditioning = model_and_inputs('softmax_global', 2, 4)
  with pytest.raises(ValueError, match=r"kernel must be one of \('xla', 'pallas'\), got 'cuda'"):
    generate(model, variables, jax.random.key(0), num_samples=4, batch_size=2, kernel='cuda',
             **conditioning)
  two_devices = jax.sharding.Mesh(np.asarray(jax.devices()[:1] * 2), ('batch',))
  with pytest.raises(ValueError, match='one device, not a mesh of 2'):
    sampler.init_state(model, variables, batch_size=2, mesh=two_devices, kernel='pallas',
                       **conditioning)


def test_a_gpu_backend_is_refused_in_one_line_until_the_kernel_lowers(monkeypatch):
  model, variables, _, conditioning = model_and_inputs('softmax_global', 2, 4)
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  with pytest.raises(ValueError, match="does not lower for CUDA yet"):
    sampler.init_state(model, variables, batch_size=2, kernel='pallas', **conditioning)


def _cuda_export(function, *args):
  return jax.export.export(jax.jit(function), platforms=['cuda'])(*args)


@pytest.mark.slow
@pytest.mark.xfail(raises=NotImplementedError, strict=True,
                   reason='Mosaic GPU (jaxlib 0.10.2) copies no block under 128 bytes (the '
                          'scalars) and lowers no dot_general, argmax or cumsum in lane '
                          'semantics: see pallas_sampler.py')
def test_kernel_lowers_for_cuda_on_this_host():
  """Mosaic GPU's lowering runs without a GPU (jax.export for 'cuda'): the kernel's, too."""
  from jax.experimental import pallas as pl  # pylint: disable=g-import-not-at-top
  from jax.experimental.pallas import mosaic_gpu as plgpu  # pylint: disable=g-import-not-at-top

  def double(x_ref, out_ref):
    out_ref[...] = 2 * x_ref[...]

  try:
    _cuda_export(lambda x: pl.pallas_call(double, out_shape=x, compiler_params=(
        plgpu.CompilerParams()))(x), jax.ShapeDtypeStruct((128, 128), jnp.float32))
  except Exception as error:  # pylint: disable=broad-except
    pytest.skip(f"this jaxlib cannot run Mosaic GPU's lowering without a GPU: {error}")
  model, variables, _, conditioning = model_and_inputs('softmax_global', 1, 4)
  state = sampler.init_state(model, variables, **conditioning)
  _cuda_export(lambda *args: pallas_sampler.generate_chunk(
      *args, num_samples=32, greedy=False, interpret=False), state.decoder, state.conditioning,
               state.cache, sampler.row_keys(jax.random.key(0), 1), jnp.float32(1.0))


@pytest.mark.slow
def test_streamed_vocoding_equals_the_xla_samplers():
  """synthesis.stream: one frame's window at a time (the features of frames after the first)."""
  model, variables, _, conditioning = model_and_inputs('mixture_global_local', 1, 40)
  pieces = {kernel: np.concatenate(list(synthesis.stream(
      model, variables, jax.random.key(8), iter(conditioning['local_cond'][0]),
      global_cond=conditioning['global_cond'], kernel=kernel))) for kernel in ('xla', 'pallas')}
  np.testing.assert_array_equal(pieces['pallas'], pieces['xla'])
