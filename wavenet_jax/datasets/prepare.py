r"""Prepares an audio dataset for training and prints what it holds.

  python -m wavenet_jax.datasets.prepare --wav_dir=DIR [--data_dir=...] \
      [--sample_rate=16000] [--validation_fraction=0.05]
  python -m wavenet_jax.datasets.prepare --name=vctk --data_dir=...

Prints the files found, the hours and examples of each split, the speakers, and
every skipped or ignored file with the reason. Training prepares the dataset
itself when needed (with the same settings it reuses this preparation) and
adds the mel normalisation statistics of its mel settings.
"""
from collections.abc import Sequence

from absl import app
from absl import flags
import ml_collections

from wavenet_jax import datasets
from wavenet_jax.datasets import audio_folder

_NAME = flags.DEFINE_string('name', 'audio_folder', 'Dataset: audio_folder or a catalog name.')
_WAV_DIR = flags.DEFINE_string('wav_dir', '', "Folder of audio files ('' = the embedded corpus).")
_DATA_DIR = flags.DEFINE_string('data_dir', '', "TFDS data_dir ('' = TFDS's default).")
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate to store, in Hz.')
_VALIDATION_FRACTION = flags.DEFINE_float(
    'validation_fraction', 0.05, 'Fraction of the files held out for validation.')


def report_lines(source: datasets.AudioSource, sample_rate: int) -> list[str]:
  """What a prepared dataset holds: files, hours, speakers, skipped and ignored files."""
  builder = source.builder
  lines = [f'Dataset {builder.info.full_name} prepared in {builder.data_dir}']
  for split in (source.train_split, source.validation_split):
    lines.append(f'  {split}: {len(source.data_source(split))} examples')
  lines.append(f'  speakers ({len(source.speakers)}): {", ".join(source.speakers)}')
  if isinstance(builder, audio_folder.AudioFolder):
    metadata = builder.info.metadata
    listing = builder.builder_config.listing
    hours = {split: samples / sample_rate / 3600 for split, samples in
             metadata['num_samples'].items()}
    lines.insert(1, f'  audio files found: {len(listing.entries)} '
                    f'({sum(hours.values()):.3f} hours prepared: '
                    + ', '.join(f'{split} {h:.3f}' for split, h in sorted(hours.items())) + ')')
    lines.append(f'  skipped: {len(metadata["skipped"]) + len(metadata["missing"])}')
    lines.append('  ' + (audio_folder.skipped_summary(metadata) or 'No file skipped.'))
    if metadata['clipped']:
      lines.append(f'  clipped to [-1, 1] when stored as int16 ({len(metadata["clipped"])}): '
                   + ', '.join(metadata['clipped']))
    if metadata['unlisted']:
      lines.append(f'  audio files without a metadata.csv row (speaker = folder name): '
                   f'{metadata["unlisted"]}')
    if metadata['ignored']:
      lines.append(f'  ignored (not .wav/.flac/.ogg) ({len(metadata["ignored"])}): '
                   + ', '.join(metadata['ignored']))
  return lines


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  data_config = ml_collections.ConfigDict(dict(
      name=_NAME.value, wav_dir=_WAV_DIR.value, data_dir=_DATA_DIR.value,
      sample_rate=_SAMPLE_RATE.value, validation_fraction=_VALIDATION_FRACTION.value))
  try:
    source = datasets.audio_source(data_config)
    source.prepare()
  except (ValueError, RuntimeError) as error:
    raise app.UsageError(str(error)) from error
  print('\n'.join(report_lines(source, data_config.sample_rate)))


if __name__ == '__main__':
  app.run(main)
