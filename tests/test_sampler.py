"""Tests of the cached sampler (wavenet_jax/sampler.py) against the parallel forward pass."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from test_models import CONDITIONINGS, NUM_CLASSES, model_inputs, tiny_model
import teacher_forcing
from training_runs import run_env
from wavenet_jax import distributions, generate, sampler, synthesis


@pytest.mark.parametrize('kernel_size', [2, 3])
@pytest.mark.parametrize('name', CONDITIONINGS)
def test_cached_step_matches_parallel_forward(name, kernel_size):
  """Teacher-forced, the cached step gives the parallel logits at every step."""
  model = tiny_model(kernel_size, **CONDITIONINGS[name])
  time = 2 * model.receptive_field + 3
  audio, global_cond, local_cond = model_inputs(model, 2, time)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  expected = model.apply(variables, audio, global_cond, local_cond)
  logits = teacher_forcing.cached_logits(model, variables, audio, global_cond, local_cond)
  assert logits.shape == expected.shape and logits.dtype == jnp.float32
  assert np.abs(logits - expected).max() < 1e-4


@pytest.mark.parametrize('name', ['global', 'local_transposed'])
def test_cached_step_matches_parallel_forward_for_large_batches(name):
  """Batches above the decoder's batched_past_taps_max_batch take the per-layer past-tap path."""
  model = tiny_model(**CONDITIONINGS[name])
  batch_size = 3
  audio, global_cond, local_cond = model_inputs(model, batch_size, model.receptive_field + 5)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  expected = model.apply(variables, audio, global_cond, local_cond)
  logits = teacher_forcing.cached_logits(model, variables, audio, global_cond, local_cond,
                                         batched_past_taps_max_batch=2)
  assert np.abs(logits - expected).max() < 1e-4


def greedy_by_full_forwards(model, variables, prompt, num_samples, global_cond, local_cond):
  """Greedy decoding by one full forward pass per new sample.

  The forward runs over a fixed-length buffer (one compilation): by causality the
  not-yet-generated tail does not affect the logits that are read.
  """
  prompt_len = prompt.shape[1]
  audio = jnp.pad(prompt, ((0, 0), (0, num_samples)))
  forward = jax.jit(lambda audio: model.apply(variables, audio, global_cond, local_cond))
  for time in range(prompt_len - 1, prompt_len - 1 + num_samples):
    audio = audio.at[:, time + 1].set(jnp.argmax(forward(audio)[:, time], axis=-1))
  return audio[:, prompt_len:]


@pytest.mark.parametrize('name,prompt_len', [('unconditional', 1), ('unconditional', 9),
                                             ('global', 5), ('local_transposed', 38)])
def test_greedy_generation_from_prompt_equals_repeated_full_forwards(name, prompt_len):
  """The prompt fills the caches (prompt_len 38 > receptive field 15: only its tail is run)."""
  model = tiny_model(**CONDITIONINGS[name])
  num_samples = 12
  audio, global_cond, local_cond = model_inputs(model, 2, prompt_len + num_samples)
  prompt = audio[:, :prompt_len]
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  samples = generate(model, variables, jax.random.key(2), num_samples=num_samples,
                     batch_size=2, temperature=0.0, prompt=prompt, global_cond=global_cond,
                     local_cond=local_cond)
  expected = greedy_by_full_forwards(model, variables, prompt, num_samples, global_cond,
                                     local_cond)
  np.testing.assert_array_equal(samples, expected)


def test_generation_without_prompt_starts_from_silence():
  model = tiny_model()
  variables = model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
  samples = generate(model, variables, jax.random.key(2), num_samples=6, temperature=0.0)
  silence = jnp.full((1, 1), NUM_CLASSES // 2, jnp.int32)
  np.testing.assert_array_equal(
      samples, greedy_by_full_forwards(model, variables, silence, 6, None, None))


def test_shapes_dtypes_and_rng():
  model = tiny_model(**CONDITIONINGS['global'])
  global_cond = jnp.array([0, 1, 2], jnp.int32)
  variables = model.init(jax.random.key(1), jnp.zeros((3, 4), jnp.int32), global_cond)

  def sample(seed):
    return generate(model, variables, jax.random.key(seed), num_samples=40, batch_size=3,
                    global_cond=global_cond)

  samples = sample(0)
  assert samples.shape == (3, 40) and samples.dtype == jnp.int32
  assert samples.min() >= 0 and samples.max() < NUM_CLASSES
  np.testing.assert_array_equal(sample(0), samples)
  assert (sample(1) != samples).any()
  # Random init gives spread-out distributions: sampling is not greedy decoding.
  greedy = generate(model, variables, jax.random.key(0), num_samples=40, batch_size=3,
                    temperature=0.0, global_cond=global_cond)
  assert (greedy != samples).any()


@pytest.mark.slow
def test_chunked_generation_equals_one_shot():
  """Chunks (not aligned to frames) continue exactly where the previous chunk stopped."""
  model = tiny_model(**CONDITIONINGS['local_transposed'])
  prompt_len, num_samples = 7, 30
  audio, _, local_cond = model_inputs(model, 2, prompt_len + num_samples)
  prompt = audio[:, :prompt_len]
  variables = model.init(jax.random.key(1), audio, None, local_cond)
  rng = jax.random.key(3)
  one_shot = generate(model, variables, rng, num_samples=num_samples, batch_size=2,
                      prompt=prompt, local_cond=local_cond)
  state = sampler.init_state(model, variables, batch_size=2, prompt=prompt,
                             local_cond=local_cond)
  chunks = []
  for chunk_size in (5, 11, 5, 9):
    state, chunk = sampler.generate_chunk(state, rng, chunk_size)
    chunks.append(chunk)
  np.testing.assert_array_equal(jnp.concatenate(chunks, axis=1), one_shot)
  # The 10 frames cover times 0 .. 39; the state is at time 36.
  with pytest.raises(ValueError, match='too few'):
    sampler.generate_chunk(state, rng, 5)


@pytest.mark.slow
def test_bfloat16_sampler_runs_and_is_finite():
  model = tiny_model(dtype=jnp.bfloat16, **CONDITIONINGS['local_transposed'])
  audio, _, local_cond = model_inputs(model, 2, 20)
  variables = model.init(jax.random.key(1), audio, None, local_cond)
  logits = teacher_forcing.cached_logits(model, variables, audio, local_cond=local_cond)
  assert logits.dtype == jnp.float32 and np.isfinite(np.asarray(logits)).all()
  samples = generate(model, variables, jax.random.key(2), num_samples=10, batch_size=2,
                     prompt=audio[:, :10], local_cond=local_cond)
  assert samples.shape == (2, 10) and samples.dtype == jnp.int32


def test_bad_inputs_raise_one_line_errors():
  model = tiny_model(**CONDITIONINGS['local_repeat'])
  audio, _, local_cond = model_inputs(model, 2, 8)
  variables = model.init(jax.random.key(1), audio, None, local_cond)
  rng = jax.random.key(0)
  with pytest.raises(ValueError, match='pass local_cond'):
    generate(model, variables, rng, num_samples=4, batch_size=2)
  with pytest.raises(ValueError, match='too few'):
    generate(model, variables, rng, num_samples=9, batch_size=2, local_cond=local_cond)
  with pytest.raises(ValueError, match='prompt must be'):
    generate(model, variables, rng, num_samples=4, batch_size=3, prompt=audio,
             local_cond=local_cond)
  with pytest.raises(ValueError, match='prompt classes'):
    generate(model, variables, rng, num_samples=4, batch_size=2, prompt=audio[:, :2] + 99,
             local_cond=local_cond)
  with pytest.raises(ValueError, match='temperature'):
    generate(model, variables, rng, num_samples=4, batch_size=2, temperature=-1.0,
             local_cond=local_cond)


@pytest.mark.parametrize('temperature', [1.0, 0.5])
def test_sample_categorical_follows_the_tempered_softmax(temperature):
  probabilities = np.array([0.1, 0.2, 0.0, 0.3, 0.4])
  num_draws = 100_000
  logits = jnp.broadcast_to(jnp.log(jnp.asarray(probabilities, jnp.float32)), (num_draws, 5))
  uniform = jax.random.uniform(jax.random.key(0), (num_draws,))
  samples = distributions.sample_categorical(logits, jnp.float32(temperature), uniform)
  assert samples.dtype == jnp.int32
  frequencies = np.bincount(np.asarray(samples), minlength=5) / num_draws
  expected = probabilities**(1 / temperature) / np.sum(probabilities**(1 / temperature))
  assert frequencies[2] == 0.0
  np.testing.assert_allclose(frequencies, expected, atol=0.006)


@pytest.mark.slow
def test_batch_split_over_devices_gives_the_same_samples_without_communication():
  """Runs tests/sharded_sampling.py on 4 CPU devices (a process of its own)."""
  tests_dir = os.path.dirname(os.path.abspath(__file__))
  result = subprocess.run([sys.executable, os.path.join(tests_dir, 'sharded_sampling.py')],
                          cwd=tests_dir, env=run_env(JAX_NUM_CPU_DEVICES='4'),
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'all checks passed' in result.stdout


def test_a_row_draws_the_same_noise_in_any_batch():
  """Row r of a batch (key fold_in(rng, r)) equals that row generated alone with its key."""
  model = tiny_model(**CONDITIONINGS['global'])
  global_cond = jnp.array([0, 1, 2], jnp.int32)
  variables = model.init(jax.random.key(1), jnp.zeros((3, 4), jnp.int32), global_cond)
  rng = jax.random.key(5)
  batch = generate(model, variables, rng, num_samples=300, batch_size=3, global_cond=global_cond)
  keys = sampler.row_keys(rng, 3)
  assert keys.shape == (3,)
  np.testing.assert_array_equal(generate(model, variables, keys, num_samples=300, batch_size=3,
                                         global_cond=global_cond), batch)
  for row in range(3):
    alone = generate(model, variables, keys[row:row + 1], num_samples=300,
                     global_cond=global_cond[row:row + 1])
    np.testing.assert_array_equal(alone[0], batch[row], err_msg=f'row {row}')
  with pytest.raises(ValueError, match=r'rng must be one key or \[3\] keys'):
    generate(model, variables, keys[:2], num_samples=4, batch_size=3, global_cond=global_cond)


def test_noise_offset_draws_the_noise_of_later_positions():
  """At a huge temperature every class is about as likely: the classes show the uniforms.

  Two rows with the same key, the second offset by d (not a multiple of NOISE_BLOCK): it
  draws at time t the uniform of time t + d of the first.
  """
  model = tiny_model()
  variables = model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
  offset = sampler.NOISE_BLOCK + 45
  key = jax.random.key(2)
  rows = generate(model, variables, jnp.stack([key, key]), num_samples=700, batch_size=2,
                  temperature=1e6, noise_offset=np.array([0, offset], np.int32))
  np.testing.assert_array_equal(rows[1, :700 - offset], rows[0, offset:])
  with pytest.raises(ValueError, match=r'noise_offset must be \[2\] integers >= 0'):
    generate(model, variables, jax.random.key(2), num_samples=4, batch_size=2,
             noise_offset=np.array([0, -1], np.int32))


def test_local_frames_put_in_one_at_a_time_give_the_one_shot_samples():
  model = tiny_model(**CONDITIONINGS['local_transposed'])
  hop = model.hop_length
  audio, _, local_cond = model_inputs(model, 1, 5 * hop)
  variables = model.init(jax.random.key(1), audio, None, local_cond)
  rng = jax.random.key(3)
  one_shot = generate(model, variables, rng, num_samples=5 * hop - 1, local_cond=local_cond)
  state = sampler.init_state(model, variables, local_cond=local_cond[:, :1])
  chunks = []
  for frame in range(5):
    if frame:
      state = sampler.replace_local_frames(state, local_cond[:, frame:frame + 1], frame)
    state, chunk = sampler.generate_chunk(state, rng, hop - (frame == 4))
    chunks.append(chunk)
  np.testing.assert_array_equal(jnp.concatenate(chunks, axis=1), one_shot)
  with pytest.raises(ValueError, match=r'frames \[2, 3\) do not hold frame 4'):
    sampler.replace_local_frames(state, local_cond[:, 2:3], 2)


@pytest.mark.parametrize('temperature', [float('nan'), float('inf'), -0.5, 1e-40, 5e-324, 1e-4])
def test_generate_refuses_temperatures_that_give_constant_audio(temperature):
  """NaN and subnormal temperatures gave constant class 0 without an error; 0 is greedy."""
  model = tiny_model()
  variables = model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
  with pytest.raises(ValueError, match=r'^temperature must be 0 \(greedy\) or finite'):
    generate(model, variables, jax.random.key(0), num_samples=4, temperature=temperature)


@pytest.mark.parametrize('speaker', [-1, 3])
def test_generate_and_synthesize_refuse_speakers_outside_the_table(speaker):
  """-1 picked the last speaker and 3 (of 3) a clamped row, silently."""
  model = tiny_model(**CONDITIONINGS['global'])
  assert model.num_speakers == 3
  variables = model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32), jnp.zeros(1, jnp.int32))
  ids = np.array([0, speaker], np.int32)
  with pytest.raises(ValueError, match=r'speaker ids must lie in \[0, 2\], got \['):
    generate(model, variables, jax.random.key(0), num_samples=4, batch_size=2, global_cond=ids)
  with pytest.raises(ValueError, match=r'speaker ids must lie in \[0, 2\]'):
    synthesis.synthesize(model, variables, jax.random.key(0), num_samples=4, batch_size=2,
                         global_cond=ids)


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_generate_refuses_non_finite_local_features(bad):
  model = tiny_model(**CONDITIONINGS['local_transposed'])
  local_cond = np.zeros((1, 4, model.local_cond_channels), np.float32)
  variables = model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32), None, local_cond)
  local_cond[0, 2, 1] = bad
  with pytest.raises(ValueError, match='local_cond holds NaN or infinite'):
    generate(model, variables, jax.random.key(0), num_samples=4, local_cond=local_cond)


def test_generate_says_what_to_pass_for_an_int_seed_or_bare_params():
  model = tiny_model()
  variables = model.init(jax.random.key(1), jnp.zeros((1, 4), jnp.int32))
  with pytest.raises(ValueError, match=r'rng must be a PRNG key such as jax.random.key\(seed\)'):
    generate(model, variables, 0, num_samples=4)
  with pytest.raises(ValueError, match=r"variables must be the model's variables \{'params'"):
    generate(model, variables['params'], jax.random.key(0), num_samples=4)
  # Raw uint32 keys still work, and give the typed key's samples.
  np.testing.assert_array_equal(
      generate(model, variables, jax.random.PRNGKey(3), num_samples=4),
      generate(model, variables, jax.random.wrap_key_data(jax.random.PRNGKey(3)), num_samples=4))
