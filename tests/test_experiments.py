"""Every config under experiments/ loads, passes the trainer's checks and builds its model."""
import importlib
import pkgutil

import flax.linen as nn
import jax
import pytest

import experiments
from wavenet_jax import config_rules
from wavenet_jax import models
from wavenet_jax import trainer

# common.py holds the configs' shared settings; benchmarks/ and tools/ are packages.
CONFIG_NAMES = sorted(module.name for module in pkgutil.iter_modules(experiments.__path__)
                      if not module.ispkg and module.name != 'common')


def test_every_experiment_is_listed():
  assert {'default', 'tiny', 'speech_cpu', 'multispeaker_cpu', 'vocoder_cpu',
          'music_cpu', 'tts_cpu'} <= set(CONFIG_NAMES)


# (config, variant): every variant of configs that take one (`--config=FILE:VARIANT`).
CONFIGS = [(name, variant) for name in CONFIG_NAMES
           for variant in getattr(importlib.import_module(f'experiments.{name}'), 'VARIANTS',
                                  [None])]


@pytest.mark.parametrize('name,variant', CONFIGS)
def test_config_builds_its_model(name, variant):
  module = importlib.import_module(f'experiments.{name}')
  config = module.get_config() if variant is None else module.get_config(variant)
  if name.endswith('_cpu'):  # They train on a corpus folder the user gives.
    with pytest.raises(ValueError, match='config.data.wav_dir is required'):
      config_rules.check_config(config, num_batch_shards=1)
    config.data.wav_dir = '/corpus'
  config_rules.check_config(config, num_batch_shards=1)
  model = models.model_from_config(config.model, config.data, ['a', 'b', 'c'])
  inputs = trainer.model_inputs(trainer.init_batch(model))
  params = nn.unbox(jax.eval_shape(model.init, jax.random.key(0), *inputs)['params'])
  assert params['layer_0']['kernel'].shape == (
      config.model.kernel_size, config.model.residual_channels, config.model.gate_channels)
  assert len(models.dilations(config.model.num_layers, config.model.num_stacks)) == len(
      [module for module in params if module.startswith('layer_')])
  assert ('speaker_embedding' in params) == config.model.global_conditioning
  assert any(module.startswith('upsample') for module in params) == (
      config.model.local_conditioning and config.model.upsample_method == 'transposed')


@pytest.mark.parametrize('key,value,message', [
    ('output', 'softmax', 'config.model.output must be one of'),
    ('num_mixtures', 0, 'config.model.num_mixtures must be >= 1'),
    ('log_scale_min', float('nan'), 'config.model.log_scale_min must be finite')])
def test_check_config_builds_the_head(key, value, message):
  config = importlib.import_module('experiments.default').get_config()
  config.model.output = 'mixture_of_logistics'
  config.model[key] = value
  with pytest.raises(ValueError, match=message):
    config_rules.check_config(config, num_batch_shards=1)
