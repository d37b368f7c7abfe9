"""Checks of generation with the batch split over devices; run by test_sampler.py.

Needs several CPU devices, so it runs in its own process (JAX_NUM_CPU_DEVICES=4).
Exits non-zero (an AssertionError) when a check fails.
"""
import jax
import numpy as np

from test_models import CONDITIONINGS, model_inputs, tiny_model
from wavenet_jax import sampler

COLLECTIVES = ('all-gather', 'all-reduce', 'all-to-all', 'collective-permute', 'reduce-scatter')


def check_same_samples_without_communication(name: str, batch_size: int,
                                            output: str = 'mulaw_softmax') -> None:
  """Split and unsplit generation give the same samples; the split one never communicates."""
  model = tiny_model(**CONDITIONINGS[name], output=output)
  prompt_len, chunk_size = 5, 12
  audio, global_cond, local_cond = model_inputs(model, batch_size, prompt_len + 3 * chunk_size)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  rng = jax.random.key(7)
  mesh = sampler.batch_mesh(batch_size)
  results = []
  for chosen_mesh in (None, mesh):
    state = sampler.init_state(model, variables, batch_size=batch_size,
                               prompt=audio[:, :prompt_len], global_cond=global_cond,
                               local_cond=local_cond, mesh=chosen_mesh)
    state, first = sampler.generate_chunk(state, rng, chunk_size)
    compiled = sampler._generate_chunk._cache_size()  # pylint: disable=protected-access
    state, second = sampler.generate_chunk(state, rng, chunk_size)
    assert sampler._generate_chunk._cache_size() == compiled, (  # pylint: disable=protected-access
        f'{name}: the second chunk compiled again')
    results.append(np.concatenate([first, second], axis=1))
  np.testing.assert_array_equal(results[1], results[0], err_msg=name)
  assert len(results[1]) == batch_size

  state = sampler.init_state(model, variables, batch_size=batch_size, global_cond=global_cond,
                             local_cond=local_cond, mesh=mesh)
  ring = state.cache.decode.ring
  assert ring.sharding.shard_shape(ring.shape)[1] == batch_size // mesh.size
  hlo = sampler._generate_chunk.lower(  # pylint: disable=protected-access
      state.decoder, state.conditioning, state.cache, sampler.row_keys(rng, batch_size),
      np.float32(1.0), num_samples=chunk_size, greedy=False).compile().as_text()
  found = [op for op in COLLECTIVES if op in hlo]
  assert not found, f'{name}: the split step communicates: {found}'


def main() -> None:
  assert jax.device_count() == 4, jax.devices()
  assert sampler.batch_mesh(8).size == 4
  assert sampler.batch_mesh(6).size == 3
  assert sampler.batch_mesh(1).size == 1
  for name in ('global', 'local_transposed'):
    check_same_samples_without_communication(name, batch_size=4)
  check_same_samples_without_communication('unconditional', batch_size=6)
  check_same_samples_without_communication('local_transposed', batch_size=4,
                                           output='mixture_of_logistics')
  model = tiny_model()
  try:
    sampler.init_state(model, model.init(jax.random.key(0), np.zeros((1, 4), np.int32)),
                       batch_size=3, mesh=sampler.batch_mesh(4))
  except ValueError as error:
    assert 'does not split evenly' in str(error), error
  else:
    raise AssertionError('batch 3 over 4 devices did not raise')
  print('sharded sampling: all checks passed')


if __name__ == '__main__':
  main()
