"""What a config may be: the checks before a run, what a resume may change, old saved configs.

`check_config` refuses, in one line naming the key, a config the trainer cannot run;
`check_resumable` compares a workdir's saved config with the requested one before a run
resumes; `config_from_saved_json` reads the config saved with a checkpoint of any released
version (keys added since are filled in, keys moved since are moved).
"""
import json
from typing import Any

import jax
import ml_collections

from wavenet_jax import distributions
from wavenet_jax import features
from wavenet_jax import linguistic
from wavenet_jax.models import EMBEDDING_INITS


def check_config(config: ml_collections.ConfigDict, num_batch_shards: int) -> None:
  """Raises ValueError, naming the config key, for a setting the trainer cannot run.

  Called by `train_and_evaluate` before the workdir is touched.

  Args:
    config: the experiment config.
    num_batch_shards: devices the global batch is split over (`sharding.num_batch_shards`).
  """
  if config.data.wav_dir is None:  # The experiments on a corpus the user provides.
    raise ValueError('config.data.wav_dir is required by this config: give the corpus folder '
                     'with --config.data.wav_dir=FOLDER.')
  for key, value in (('train.batch_size', config.train.batch_size),
                     ('train.num_steps', config.train.num_steps),
                     ('eval.num_batches', config.eval.num_batches),
                     ('data.segment_length', config.data.segment_length),
                     ('data.read_threads', config.data.read_threads)):
    if value < 1:
      raise ValueError(f'config.{key} must be >= 1, got {value}.')
  batch_size = config.train.batch_size
  if batch_size % jax.process_count() or batch_size % num_batch_shards:
    raise ValueError(
        f'config.train.batch_size={batch_size} must be divisible by the number of processes '
        f'({jax.process_count()}) and of batch shards ({num_batch_shards}).')
  if config.model.dtype not in ('float32', 'bfloat16'):
    raise ValueError(f"config.model.dtype must be 'float32' or 'bfloat16', "
                     f'got {config.model.dtype!r}.')
  if config.model.embedding_init not in EMBEDDING_INITS:
    raise ValueError(f'config.model.embedding_init must be one of {sorted(EMBEDDING_INITS)}, '
                     f'got {config.model.embedding_init!r}.')
  try:
    distributions.make(config.model.output, None, config.model.num_mixtures,
                       config.model.log_scale_min)
  except ValueError as error:
    raise ValueError(f'config.model.{error}') from None
  if not 0.0 <= config.model.preemphasis < 1.0:
    raise ValueError(f'config.model.preemphasis must be in [0, 1) (0: off), '
                     f'got {config.model.preemphasis}.')
  if not 0.0 <= config.data.speed_perturbation < 1.0:
    raise ValueError('config.data.speed_perturbation must be in [0, 1), '
                     f'got {config.data.speed_perturbation}.')
  if config.data.speed_perturbation and config.model.local_conditioning:
    raise ValueError('config.data.speed_perturbation must be 0 with '
                     'config.model.local_conditioning (the mel frames would not match).')
  features.channels_and_hop(config.data)  # Its one-line errors name the key.
  if config.data.features.normalisation not in features.NORMALISATIONS:
    raise ValueError(f'config.data.features.normalisation must be one of '
                     f'{list(features.NORMALISATIONS)}, got {config.data.features.normalisation!r}.')
  if config.data.top_db > 0 and features.source(config.data) != features.MEL:
    raise ValueError(f'config.data.top_db must be 0 with config.data.features.source='
                     f'{features.source(config.data)!r} (trimming would move the audio away '
                     'from its feature frames).')
  if config.train.max_seconds < 0:
    raise ValueError(f'config.train.max_seconds must be >= 0 (0: no limit), '
                     f'got {config.train.max_seconds}.')
  if not 0.0 <= config.train.ema_decay < 1.0:
    raise ValueError(f'config.train.ema_decay must be in [0, 1), got {config.train.ema_decay}.')
  for key, value in (('train.log_every_steps', config.train.log_every_steps),
                     ('checkpoint.every_steps', config.checkpoint.every_steps)):
    if value < 1:
      raise ValueError(f'config.{key} must be >= 1, got {value}.')
  for key, value in (('eval.every_steps', config.eval.every_steps),
                     ('sample.every_steps', config.sample.every_steps),
                     ('model.local_cond_projection', config.model.local_cond_projection)):
    if value < 0:
      raise ValueError(f'config.{key} must be >= 0 (0 disables it), got {value}.')


# Config keys whose change makes a checkpoint another model or trained on other features: a
# run resumed with a change here would silently continue something else.
_ARCHITECTURE_KEYS = ('model.', 'data.name', 'data.wav_dir', 'data.sample_rate', 'data.mel.',
                      'data.features.')


def _flat(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """'section.key' -> value as JSON keeps it (tuples as lists), as checkpoints save configs."""

  def flatten(tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
      if isinstance(value, dict):
        flat.update(flatten(value, f'{prefix}{key}.'))
      else:
        flat[f'{prefix}{key}'] = value
    return flat

  return flatten(json.loads(config.to_json_best_effort()), '')


def check_resumable(saved: ml_collections.ConfigDict, requested: ml_collections.ConfigDict,
                    workdir: str, accept_config_change: bool = False) -> list[str]:
  """Compares a workdir's saved config with the requested one before resuming.

  Returns:
    'config.KEY: saved -> requested' for each key that changed (safe to resume with, or
    accepted).

  Raises:
    ValueError: in one line naming the keys, when the model or the data features changed
      (unless accept_config_change).
  """
  saved_flat, requested_flat = _flat(saved), _flat(requested)
  changes, unsafe = [], []
  for key in sorted(saved_flat.keys() | requested_flat.keys()):
    before, after = saved_flat.get(key, '(absent)'), requested_flat.get(key, '(absent)')
    if before != after:
      changes.append(f'config.{key}: {before!r} -> {after!r}')
      if key.startswith(_ARCHITECTURE_KEYS):
        unsafe.append(changes[-1])
  if unsafe and not accept_config_change:
    raise ValueError(
        f'{workdir} holds a run of another model or data: {"; ".join(unsafe)}. Use a new '
        '--workdir, or pass --accept_config_change to resume this checkpoint anyway.')
  return changes


# Config keys added after the first checkpoints were written, with the value that those
# checkpoints' models had: restore fills them in (the one place that sees old checkpoints).
_ADDED_CONFIG_KEYS = {
    'model.embedding_init': 'normal',
    'model.output': 'mulaw_softmax',
    'model.num_mixtures': 10,
    'model.log_scale_min': -14.0,
    'model.preemphasis': 0.0,
    'train.grow_speakers': False,
    'train.init_from': '',
    # Local conditioning on the log-mel (the other fields as experiments/default.py sets them).
    'data.features': dict(source=features.MEL, hop_length=linguistic.DEFAULT_HOP_LENGTH,
                          channels=0, dir='', phones=linguistic.FESTIVAL_PHONES),
    'data.features.normalisation': 'standard',
    'model.local_cond_projection': 0,
}


# Config keys that moved, old -> new: restore moves them in checkpoints written before, and
# `move_config_keys` in a config that still sets one.
_MOVED_CONFIG_KEYS = {
    'train.eval_every_steps': 'eval.every_steps',
    'train.eval_batches': 'eval.num_batches',
    'train.sample_every_steps': 'sample.every_steps',
    'train.sample_seconds': 'sample.seconds',
    'data.preemphasis': 'model.preemphasis',
}


def move_config_keys(config: ml_collections.ConfigDict) -> list[str]:
  """Moves the keys of a config that sit where they used to (_MOVED_CONFIG_KEYS), in place.

  An old key left unset (None: experiments/default.py keeps a placeholder so that a command
  line may still set it) is dropped.

  Returns:
    one notice per old key that held a value: 'config.OLD moved to config.NEW; ...'.

  Raises:
    ValueError: if a config sets an old key and its new one to different values.
  """
  notices = []
  with config.unlocked():
    for old, new in _MOVED_CONFIG_KEYS.items():
      old_section, old_name = old.rsplit('.', 1)
      new_section, new_name = new.rsplit('.', 1)
      if old_name not in config.get(old_section, {}):
        continue
      value = config[old_section][old_name]
      del config[old_section][old_name]
      if value is None:
        continue
      if new_section not in config:
        config[new_section] = ml_collections.ConfigDict()
      current = config[new_section].get(new_name)
      if current not in (None, value, _ADDED_CONFIG_KEYS.get(new)):
        raise ValueError(f'config.{old} (moved to config.{new}) is {value}, but config.{new} '
                         f'is {current}: set config.{new} alone.')
      config[new_section][new_name] = value
      notices.append(f'config.{old} moved to config.{new}; using its value {value!r} there.')
  return notices


def config_from_saved_json(config_json: dict[str, Any]) -> ml_collections.ConfigDict:
  """The config saved with a checkpoint (as JSON), in the keys of this version."""
  config = ml_collections.ConfigDict(config_json)
  move_config_keys(config)
  for key, value in _ADDED_CONFIG_KEYS.items():
    section, name = key.rsplit('.', 1)
    if name not in config[section]:
      config[section][name] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
  return config
