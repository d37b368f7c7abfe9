r"""Input pipeline throughput (batches/s) against the training step it feeds.

  python -m experiments.benchmarks.input_pipeline [--config=experiments/default.py] \
      [--num_batches=50] [--train_steps=2] [--config.data.read_threads=4]

Prepares config.data (the embedded speech corpus by default) if needed, then
times this host's batches of config.train.batch_size rows, twice: audio only, and
with speaker ids and log-mel features. With --train_steps > 0 it also times the
trainer's jitted train step of the same config on this machine's default device,
on the pipeline's batches, and prints how many times faster the pipeline is
(the target is 10x). The last line is JSON.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
from collections.abc import Sequence
import itertools
import json
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
from ml_collections import config_flags

from wavenet_jax import input_pipeline
from wavenet_jax import optimizers
from wavenet_jax import trainer

_CONFIG = config_flags.DEFINE_config_file('config', 'experiments/default.py',
                                          'Experiment config.', lock_config=True)
_NUM_BATCHES = flags.DEFINE_integer('num_batches', 50, 'Batches timed per pipeline variant.')
_WARMUP_BATCHES = flags.DEFINE_integer('warmup_batches', 5, 'Batches read before timing.')
_TRAIN_STEPS = flags.DEFINE_integer(
    'train_steps', 2, 'Train steps timed after one compile step (0: do not time the step).')


def _batches_per_second(batches, num_batches: int, warmup_batches: int) -> float:
  for _ in itertools.islice(batches, warmup_batches):
    pass
  start = time.perf_counter()
  for _ in itertools.islice(batches, num_batches):
    pass
  return num_batches / (time.perf_counter() - start)


def _train_steps_per_second(config, info, batch, num_steps: int) -> float:
  """Steps/s of trainer.train_step (jitted, state donated) of config on one device."""
  model = trainer.model_from_config(config.model, config.data, info.speakers)
  optimizer = optimizers.create_optimizer(config.train)
  use_ema = config.train.ema_decay > 0
  state = jax.jit(lambda key: nn.unbox(trainer.init_train_state(key, model, optimizer, use_ema)))(
      jax.random.key(config.seed))
  step = trainer.make_train_step(model, optimizer, optimizers.create_learning_rate_fn(config.train),
                                 config.train.ema_decay)
  batch = {key: jax.device_put(value) for key, value in batch.items()}
  state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(num_steps):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  return num_steps / (time.perf_counter() - start)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = _CONFIG.value
  dataset = input_pipeline.prepare_dataset(config.data)
  info = dataset.info
  receptive_field = trainer.model_from_config(config.model, config.data,
                                              info.speakers).receptive_field
  results = {'config_batch_size': config.train.batch_size,
             'crop_samples': receptive_field + config.data.segment_length,
             'read_threads': config.data.read_threads}
  for name, conditioned in (('audio', False), ('speaker_mel', True)):
    batches = dataset.train_batches(
        receptive_field=receptive_field, global_batch_size=config.train.batch_size,
        seed=config.seed, with_speaker=conditioned, with_mel=conditioned)
    rate = _batches_per_second(batches, _NUM_BATCHES.value, _WARMUP_BATCHES.value)
    results[f'batches_per_second_{name}'] = rate
    print(f'{name}: {rate:.2f} batches/s ({rate * config.train.batch_size:.1f} crops/s)')
  if _TRAIN_STEPS.value > 0:
    with_speaker = bool(config.model.global_conditioning)
    with_mel = bool(config.model.local_conditioning)
    batch = next(dataset.train_batches(
        receptive_field=receptive_field, global_batch_size=config.train.batch_size,
        seed=config.seed, with_speaker=with_speaker, with_mel=with_mel))
    steps = _train_steps_per_second(config, info, batch, _TRAIN_STEPS.value)
    feed = results['batches_per_second_speaker_mel' if with_mel or with_speaker
                   else 'batches_per_second_audio']
    results.update(train_steps_per_second=steps, device=str(jax.devices()[0].platform),
                   pipeline_over_train_step=feed / steps)
    print(f'train step: {steps:.3f} steps/s on {jax.devices()[0].platform}; the pipeline is '
          f'{feed / steps:.1f}x faster (target >= 10x)')
  print(json.dumps(results))


if __name__ == '__main__':
  app.run(main)
