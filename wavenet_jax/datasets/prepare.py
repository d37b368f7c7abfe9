r"""Prepares an audio dataset for training and prints what it holds.

  python -m wavenet_jax.datasets.prepare --wav_dir=DIR [--data_dir=...] \
      [--sample_rate=16000] [--validation_fraction=0.05]
  python -m wavenet_jax.datasets.prepare --name=vctk --data_dir=...
  python -m wavenet_jax.datasets.prepare --config=experiments/tts_cpu.py \
      --config.data.wav_dir=DIR

With --config, the config's data settings are prepared exactly as train.py would prepare
them (its features too: the linguistic features made from .lab files, arrays from files);
--config.data.KEY=VALUE overrides them, and the other flags are refused.
Prints the files found, the hours and examples of each split, the speakers,
every skipped or ignored file with the reason, and the metadata.csv rows not
used or overridden, with their line numbers; errors name these flags. Training
prepares the dataset itself when needed (with the same settings it reuses this
preparation) and adds the mel normalisation statistics of its mel settings.
"""
from collections.abc import Sequence

from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from wavenet_jax import cli
from wavenet_jax import config_rules
from wavenet_jax import datasets

_NAME = flags.DEFINE_string('name', 'audio_folder', 'Dataset: audio_folder or a catalog name.')
_WAV_DIR = flags.DEFINE_string('wav_dir', '', "Folder of audio files ('' = the embedded corpus).")
_DATA_DIR = flags.DEFINE_string('data_dir', '', "TFDS data_dir ('' = TFDS's default).")
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate to store, in Hz.')
_VALIDATION_FRACTION = flags.DEFINE_float(
    'validation_fraction', 0.05, 'Fraction of the files held out for validation.')
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, "An experiment config: prepare its config.data as train.py would (instead "
    'of the flags above).', lock_config=True)
_FOLDER_FLAGS = ('name', 'wav_dir', 'data_dir', 'sample_rate', 'validation_fraction')


@cli.exit_on_error(ValueError, RuntimeError)
def main(argv: Sequence[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  if _CONFIG.value is None:
    data_config, flag_prefix = ml_collections.ConfigDict(dict(
        name=_NAME.value, wav_dir=_WAV_DIR.value, data_dir=_DATA_DIR.value,
        sample_rate=_SAMPLE_RATE.value, validation_fraction=_VALIDATION_FRACTION.value)), '--'
  else:
    given = [name for name in _FOLDER_FLAGS if flags.FLAGS[name].present]
    if given:
      raise ValueError(f'--{given[0]} with --config: set it as --config.data.{given[0]}=...')
    for notice in config_rules.move_config_keys(_CONFIG.value):
      logging.warning(notice)
    config_rules.check_config(_CONFIG.value, num_batch_shards=1)
    data_config, flag_prefix = _CONFIG.value.data, 'config.data.'
  source = datasets.audio_source(data_config, flag_prefix=flag_prefix)
  source.prepare()
  print('\n'.join(source.describe()))


if __name__ == '__main__':
  cli.run(main)
