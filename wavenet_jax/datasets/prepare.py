r"""Prepares an audio dataset for training and prints what it holds.

  python -m wavenet_jax.datasets.prepare --wav_dir=DIR [--data_dir=...] \
      [--sample_rate=16000] [--validation_fraction=0.05]
  python -m wavenet_jax.datasets.prepare --name=vctk --data_dir=...

Prints the files found, the hours and examples of each split, the speakers,
every skipped or ignored file with the reason, and the metadata.csv rows not
used or overridden, with their line numbers; errors name these flags. Training
prepares the dataset itself when needed (with the same settings it reuses this
preparation) and adds the mel normalisation statistics of its mel settings.
"""
from collections.abc import Sequence

from absl import flags
import ml_collections

from wavenet_jax import cli
from wavenet_jax import datasets

_NAME = flags.DEFINE_string('name', 'audio_folder', 'Dataset: audio_folder or a catalog name.')
_WAV_DIR = flags.DEFINE_string('wav_dir', '', "Folder of audio files ('' = the embedded corpus).")
_DATA_DIR = flags.DEFINE_string('data_dir', '', "TFDS data_dir ('' = TFDS's default).")
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate to store, in Hz.')
_VALIDATION_FRACTION = flags.DEFINE_float(
    'validation_fraction', 0.05, 'Fraction of the files held out for validation.')


@cli.exit_on_error(ValueError, RuntimeError)
def main(argv: Sequence[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  data_config = ml_collections.ConfigDict(dict(
      name=_NAME.value, wav_dir=_WAV_DIR.value, data_dir=_DATA_DIR.value,
      sample_rate=_SAMPLE_RATE.value, validation_fraction=_VALIDATION_FRACTION.value))
  source = datasets.audio_source(data_config, flag_prefix='--')
  source.prepare()
  print('\n'.join(source.describe()))


if __name__ == '__main__':
  cli.run(main)
