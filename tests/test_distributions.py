"""Tests of the output heads' distributions (wavenet_jax/distributions.py, codecs.py) and of the
mixture-of-logistics WaveNet: likelihoods that sum to one, finite gradients, μ-law-binned
probabilities, the cached step against the parallel forward, and sampling that follows the
mixture."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import teacher_forcing
from wavenet_jax import WaveNet, codecs, distributions, mulaw, sampler

PCM16 = codecs.PCM16_CLASSES
MIXTURE = distributions.make('mixture_of_logistics', PCM16, 3, -14.0)
SOFTMAX = distributions.make('mulaw_softmax')
HOP = 4
CONDITIONINGS = {
    'unconditional': {},
    'global': {'num_speakers': 3},
    'local': {'local_cond_channels': 3, 'hop_length': HOP, 'upsample_scales': (2, 2)},
}


def _mixture_outputs(key, shape, num_mixtures=4, mean_scale=0.5, log_scale_range=(-9.0, 0.0)):
  keys = jax.random.split(key, 3)
  logits = 3.0 * jax.random.normal(keys[0], (*shape, num_mixtures))
  means = mean_scale * jax.random.normal(keys[1], (*shape, num_mixtures))
  log_scales = jax.random.uniform(keys[2], (*shape, num_mixtures), minval=log_scale_range[0],
                                  maxval=log_scale_range[1])
  return jnp.concatenate([logits, means, log_scales], axis=-1)


def _all_bins_log_probs(head, outputs):
  """[..., num_classes] log p of every class, for outputs [..., P]."""
  classes = jnp.arange(head.num_classes)
  return jax.vmap(lambda c: head.log_prob(outputs, jnp.full(
      outputs.shape[:-1], c)), out_axes=-1)(classes)


def test_pcm_codec_is_exact_for_16_bit_audio():
  pcm = np.arange(-32768, 32768, dtype=np.int16)
  classes = codecs.pcm_encode(pcm.astype(np.float32) / 32768)
  np.testing.assert_array_equal(classes, pcm.astype(np.int32) + 32768)
  np.testing.assert_array_equal(codecs.pcm_decode(classes), pcm.astype(np.float32) / 32768)
  np.testing.assert_array_equal(codecs.pcm_encode(np.array([-3.0, 1.0, 2.0])), [0, PCM16 - 1,
                                                                               PCM16 - 1])
  assert codecs.Codec('pcm', PCM16).silence_class == 32768
  np.testing.assert_array_equal(codecs.pcm_encode(jnp.asarray(pcm, jnp.float32) / 32768),
                                classes)


@pytest.mark.parametrize('mean_scale,log_scale_range', [
    (0.5, (-9.0, 0.0)),      # Typical.
    (0.3, (-14.0, -11.0)),   # At the floor: narrower than a bin.
    (3.0, (2.0, 6.0)),       # Far outside [-1, 1], wider than the range.
    (0.999, (-14.0, -13.0)),  # Tiny scales at the edges.
])
def test_mixture_likelihood_sums_to_one_over_all_16_bit_bins(mean_scale, log_scale_range):
  outputs = _mixture_outputs(jax.random.key(0), (3,), mean_scale=mean_scale,
                             log_scale_range=log_scale_range)
  log_probs = _all_bins_log_probs(MIXTURE, outputs)
  assert bool(jnp.all(jnp.isfinite(log_probs) | (log_probs == -jnp.inf)))
  total = np.exp(np.asarray(log_probs, np.float64)).sum(axis=-1)
  np.testing.assert_allclose(total, 1.0, atol=2e-4)


def test_mixture_log_prob_matches_a_float64_reference():
  outputs = _mixture_outputs(jax.random.key(1), (200,), log_scale_range=(-14.0, 1.0))
  targets = jax.random.randint(jax.random.key(2), (200,), 0, PCM16)
  targets = targets.at[:3].set(jnp.array([0, PCM16 - 1, PCM16 // 2]))
  got = np.asarray(MIXTURE.log_prob(outputs, targets))
  logits, means, log_scales = (np.asarray(a, np.float64)
                               for a in distributions.split_mixture(outputs, -14.0))
  value = (np.asarray(targets, np.float64) - 32768) / 32768
  sigmoid = lambda x: 0.5 * (1 + np.tanh(x / 2))  # pylint: disable=unnecessary-lambda-assignment
  scales = np.exp(log_scales)
  upper = sigmoid((value[:, None] + 1 / PCM16 - means) / scales)
  lower = sigmoid((value[:, None] - 1 / PCM16 - means) / scales)
  upper[targets == PCM16 - 1] = 1.0
  lower[targets == 0] = 0.0
  weights = np.exp(logits - logits.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  with np.errstate(divide='ignore'):
    expected = np.log(np.sum(weights * (upper - lower), axis=-1))
  usable = expected > -30  # float64 itself cancels below that; float32's closed form does not.
  assert usable.sum() > 150
  np.testing.assert_allclose(got[usable], expected[usable], rtol=1e-4, atol=1e-4)
  assert np.all(np.isfinite(got))


def test_mixture_gradient_is_finite_at_the_edges_and_for_tiny_scales():
  def loss(outputs, targets):
    return -jnp.sum(MIXTURE.log_prob(outputs, targets))

  targets = jnp.array([0, 1, PCM16 - 2, PCM16 - 1, 32768, 100, 65000])
  for log_scale_range, mean_scale in (((-30.0, -14.0), 0.5), ((-14.0, -13.9), 5.0),
                                      ((10.0, 30.0), 0.5), ((-3.0, 0.0), 0.5)):
    outputs = _mixture_outputs(jax.random.key(3), targets.shape, mean_scale=mean_scale,
                               log_scale_range=log_scale_range)
    value, grads = jax.value_and_grad(loss)(outputs, targets)
    assert np.isfinite(float(value)), log_scale_range
    assert bool(jnp.all(jnp.isfinite(grads))), log_scale_range


def test_mixture_mulaw_binned_probability_sums_to_one_and_sums_its_pcm_bins():
  outputs = _mixture_outputs(jax.random.key(4), (2,))
  pcm_log_probs = np.asarray(_all_bins_log_probs(MIXTURE, outputs), np.float64)
  mulaw_of_pcm, _ = distributions.pcm_to_mulaw_table(PCM16)
  first_pcm = np.searchsorted(mulaw_of_pcm, np.arange(mulaw.NUM_CLASSES))
  binned = MIXTURE.mulaw_log_prob(jnp.repeat(outputs[:, None], 256, axis=1),
                                        jnp.broadcast_to(jnp.asarray(first_pcm), (2, 256)))
  np.testing.assert_allclose(jax.nn.logsumexp(binned, axis=-1), 0.0, atol=1e-4)
  # Each μ-law class's probability is the mass of its own PCM bins.
  expected = np.stack([np.bincount(mulaw_of_pcm, weights=np.exp(row), minlength=256)
                       for row in pcm_log_probs])
  np.testing.assert_allclose(np.exp(np.asarray(binned)), expected, atol=2e-6, rtol=2e-3)
  # Every PCM class of a μ-law class gets that class's probability.
  some = jnp.array([[0, 5, 32768, 40000, PCM16 - 1]] * 2)
  np.testing.assert_allclose(
      MIXTURE.mulaw_log_prob(jnp.repeat(outputs[:, None], 5, axis=1), some),
      np.asarray(binned)[:, mulaw_of_pcm[np.asarray(some[0])]], atol=1e-5)


def test_mulaw_binned_probability_of_the_softmax_is_its_own():
  logits = jax.random.normal(jax.random.key(5), (4, 256))
  targets = jnp.array([0, 17, 128, 255])
  expected = jax.nn.log_softmax(logits)[jnp.arange(4), targets]
  np.testing.assert_allclose(SOFTMAX.mulaw_log_prob(logits, targets), expected,
                             atol=1e-6)
  np.testing.assert_allclose(SOFTMAX.log_prob(logits, targets), expected, atol=1e-6)


def test_mixture_samples_follow_the_mixture():
  """A histogram of draws from fixed parameters against the mixture's own bin masses."""
  num_draws = 200_000
  outputs = jnp.array([2.0, 0.0, -1.0, -0.5, 0.1, 0.6, -2.5, -3.0, -4.0])  # 3 components.
  uniforms = jax.random.uniform(jax.random.key(6), (num_draws, 2))
  draws = MIXTURE.sample(jnp.broadcast_to(outputs, (num_draws, 9)),
                               jnp.float32(1.0), uniforms, greedy=False)
  edges = np.linspace(-1.0, 1.0, 41)
  counts, _ = np.histogram(np.asarray(codecs.pcm_decode(draws)), edges)
  log_probs = np.asarray(_all_bins_log_probs(MIXTURE, outputs[None]))[0]
  bin_of_class = np.clip(np.digitize(codecs.pcm_decode(np.arange(PCM16)), edges) - 1, 0, 39)
  expected = np.bincount(bin_of_class, weights=np.exp(log_probs), minlength=40) * num_draws
  chi2 = np.sum((counts - expected) ** 2 / np.maximum(expected, 1.0))
  assert chi2 < 80, chi2  # 39 degrees of freedom: p < 1e-4 above 80.
  # Greedy: the mean of the most probable component; a low temperature stays near it.
  greedy = MIXTURE.sample(outputs[None], jnp.float32(1.0), None, greedy=True)
  assert int(greedy[0]) == int(codecs.pcm_encode(np.float32(-0.5)))
  cold = MIXTURE.sample(jnp.broadcast_to(outputs, (1000, 9)),
                              jnp.float32(0.01), uniforms[:1000], greedy=False)
  cold_values = codecs.pcm_decode(np.asarray(cold))
  assert np.all(np.min(np.abs(cold_values[:, None] - np.array([-0.5, 0.1, 0.6])), axis=1) < 0.02)


def mixture_model(dtype=jnp.float32, **conditioning) -> WaveNet:
  return WaveNet(num_layers=6, num_stacks=2, kernel_size=2, residual_channels=8,
                 gate_channels=16, skip_channels=16, output='mixture_of_logistics',
                 num_mixtures=3, dtype=dtype, **conditioning)


def _inputs(model, batch_size, time, seed=0):
  keys = jax.random.split(jax.random.key(seed), 3)
  # A smooth waveform: the scalar input differs from sample to sample like audio does.
  phase = jax.random.uniform(keys[0], (batch_size, 1)) * 6.0
  audio = codecs.pcm_encode(0.6 * jnp.sin(0.3 * jnp.arange(time) + phase))
  global_cond = local_cond = None
  if model.num_speakers:
    global_cond = jax.random.randint(keys[1], (batch_size,), 0, model.num_speakers)
  if model.local_cond_channels:
    local_cond = jax.random.normal(keys[2], (batch_size, -(-time // HOP),
                                             model.local_cond_channels))
  return audio, global_cond, local_cond


def test_mixture_model_defaults_to_16_bit_pcm():
  model = mixture_model()
  assert model.num_classes == PCM16 and model.output_size == 9
  assert model.silence_class == 32768 and model.codec.kind == 'pcm'
  assert WaveNet().num_classes == 256 and WaveNet().codec.kind == 'mulaw'
  with pytest.raises(ValueError, match='output must be one of'):
    WaveNet(output='softmax')


@pytest.mark.parametrize('name', CONDITIONINGS)
def test_mixture_cached_step_equals_parallel_forward(name):
  model = mixture_model(**CONDITIONINGS[name])
  audio, global_cond, local_cond = _inputs(model, 2, 40)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  parallel = model.apply(variables, audio, global_cond, local_cond)
  assert parallel.shape == (2, 40, 9) and parallel.dtype == jnp.float32
  cached = teacher_forcing.cached_logits(model, variables, audio, global_cond, local_cond)
  np.testing.assert_allclose(cached, parallel, atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_mixture_model_is_causal_and_trains_its_input_layer():
  model = mixture_model()
  audio, _, _ = _inputs(model, 1, 30)
  variables = model.init(jax.random.key(1), audio)
  outputs = model.apply(variables, audio)
  changed = model.apply(variables, audio.at[:, 12].add(1000))
  np.testing.assert_array_equal(changed[:, :12], outputs[:, :12])
  assert np.abs(changed[:, 12] - outputs[:, 12]).max() > 1e-4

  def loss(params):
    logits = model.apply({'params': params}, audio)
    return -jnp.mean(model.distribution.log_prob(logits[:, :-1], audio[:, 1:]))

  grads = nn.meta.unbox(jax.grad(loss)(variables["params"]))
  assert float(jnp.abs(grads['input_proj']['kernel']).max()) > 0
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_mixture_loss_in_float32_when_the_model_runs_in_bfloat16():
  model = mixture_model(jnp.bfloat16)
  audio, _, _ = _inputs(model, 2, 30)
  variables = model.init(jax.random.key(1), audio)
  outputs = model.apply(variables, audio)
  assert outputs.dtype == jnp.float32
  log_probs = model.distribution.log_prob(outputs[:, :-1], audio[:, 1:])
  assert log_probs.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(log_probs)))


def _greedy_by_full_forwards(model, variables, prompt, num_samples, global_cond, local_cond):
  """Greedy continuation of `prompt`, one full parallel forward per new sample."""
  audio = jnp.concatenate([prompt, jnp.zeros((prompt.shape[0], num_samples), jnp.int32)], 1)
  forward = jax.jit(lambda audio: model.apply(variables, audio, global_cond, local_cond))
  for time in range(prompt.shape[1] - 1, prompt.shape[1] - 1 + num_samples):
    audio = audio.at[:, time + 1].set(
        model.distribution.sample(forward(audio)[:, time], jnp.float32(1.0), None, True))
  return audio[:, prompt.shape[1]:]


@pytest.mark.parametrize('name', CONDITIONINGS)
def test_mixture_greedy_generation_from_a_prompt_equals_repeated_full_forwards(name):
  model = mixture_model(**CONDITIONINGS[name])
  audio, global_cond, local_cond = _inputs(model, 2, 30)
  variables = model.init(jax.random.key(1), audio, global_cond, local_cond)
  samples = sampler.generate(model, variables, jax.random.key(2), num_samples=10, batch_size=2,
                             temperature=0.0, prompt=audio[:, :20], global_cond=global_cond,
                             local_cond=local_cond)
  expected = _greedy_by_full_forwards(model, variables, audio[:, :20], 10, global_cond,
                                      local_cond)
  np.testing.assert_array_equal(samples, expected)


@pytest.mark.slow
def test_mixture_sampling_in_chunks_equals_one_call_and_follows_the_temperature():
  model = mixture_model(**CONDITIONINGS['local'])
  audio, _, local_cond = _inputs(model, 3, 80)
  variables = model.init(jax.random.key(1), audio, None, local_cond)
  rng = jax.random.key(3)
  one_shot = sampler.generate(model, variables, rng, num_samples=79, batch_size=3,
                              local_cond=local_cond)
  state = sampler.init_state(model, variables, batch_size=3, local_cond=local_cond)
  pieces = []
  for size in (30, 30, 19):
    state, piece = sampler.generate_chunk(state, rng, size)
    pieces.append(piece)
  np.testing.assert_array_equal(np.concatenate(pieces, axis=1), one_shot)
  assert one_shot.dtype == jnp.int32 and 0 <= int(one_shot.min()) <= int(one_shot.max()) < PCM16
  # A lower temperature narrows every logistic: the samples move towards the greedy ones.
  greedy = sampler.generate(model, variables, rng, num_samples=79, batch_size=3,
                            temperature=0.0, local_cond=local_cond)
  cold = sampler.generate(model, variables, rng, num_samples=79, batch_size=3,
                          temperature=0.001, local_cond=local_cond)
  spread = lambda x: float(np.abs(codecs.pcm_decode(x) - codecs.pcm_decode(greedy)).mean())
  assert spread(cold) < 0.2 * spread(one_shot)


def test_make_builds_each_registered_head_from_the_model_fields():
  for name, head_class in distributions.HEADS.items():
    head = distributions.make(name, None, 4, -7.0)
    assert type(head) is head_class and head.name == name
    model = WaveNet(output=name, num_mixtures=4, log_scale_min=-7.0)
    assert model.distribution == head and model.num_classes == head.num_classes
    assert model.codec == head.codec and model.output_size == head.output_size
  assert distributions.make('mulaw_softmax').output_size == 256
  assert distributions.make('mixture_of_logistics', 256, 4).output_size == 12
  for args, message in ((('softmax',), 'output must be one of'),
                        (('mixture_of_logistics', None, 0), 'num_mixtures must be >= 1, got 0'),
                        (('mixture_of_logistics', None, 2, float('nan')), 'log_scale_min must be'),
                        (('mixture_of_logistics', 255), 'even number of classes')):
    with pytest.raises(ValueError, match=message):
      distributions.make(*args)


@pytest.mark.parametrize('name', list(distributions.HEADS))
def test_next_sample_nats_sums_the_weighted_log_probs_of_both_units(name):
  head = distributions.make(name, None, 3)
  audio = jax.random.randint(jax.random.key(7), (2, 9), 0, head.num_classes)
  outputs = jax.random.normal(jax.random.key(8), (2, 9, head.output_size))
  weights = jnp.ones((2, 8)).at[1, 5:].set(0.0)
  sums = distributions.next_sample_nats(head, outputs, audio, weights)
  kept = np.asarray(weights, bool)
  for got, log_prob in ((sums.nats, head.log_prob), (sums.mulaw_nats, head.mulaw_log_prob)):
    expected = -np.asarray(log_prob(outputs[:, :-1], audio[:, 1:]))[kept].sum()
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
  assert (float(sums.nats) == float(sums.mulaw_nats)) == (name == 'mulaw_softmax')


@pytest.mark.parametrize('kind,num_classes', [('mulaw', 256), ('pcm', PCM16)])
def test_codec_refuses_nan_instead_of_encoding_a_garbage_class(kind, num_classes):
  codec = codecs.Codec(kind, num_classes)
  with pytest.raises(ValueError, match='NaN samples'):
    codec.encode(np.array([0.0, np.nan], np.float32))
  with pytest.raises(ValueError, match='NaN samples'):
    codec.encode(jnp.array([np.nan]))
  # Inside jit the waveform is not checked (traced), and encoding still works.
  np.testing.assert_array_equal(jax.jit(codec.encode)(jnp.zeros(2)), codec.encode(np.zeros(2)))


def test_the_model_checks_its_head_when_built():
  for fields, message in (({'output': 'softmax', 'num_classes': 256}, 'output must be one of'),
                          ({'output': 'mixture_of_logistics', 'num_mixtures': 0},
                           'num_mixtures must be >= 1')):
    with pytest.raises(ValueError, match=message):
      WaveNet(**fields)
