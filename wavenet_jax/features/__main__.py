r"""Writes the paper's linguistic features of a folder's labelled audio files.

  python -m wavenet_jax.features --wav_dir=DIR [--out_dir=MIRROR] [--hop_length=80] \
      [--sample_rate=16000] [--phones='pau aa ...']

For each audio file of DIR (recursively) with a `<stem>.lab` beside it, writes float32
[frames, channels] `<stem>.npy` beside it, or at the same relative path under MIRROR (audio
folders may be read-only); see wavenet_jax/linguistic.py for the channels. Files without a .lab,
or whose .lab or audio cannot be read, are listed with the reason. A training config with
config.data.features.source='labels' makes the same features itself when it prepares the
folder: this command is for sample.py --features and for other tools.
"""
from collections.abc import Sequence

from absl import flags

from wavenet_jax import cli
from wavenet_jax import linguistic

_WAV_DIR = flags.DEFINE_string('wav_dir', None, 'Folder of audio files with <stem>.lab beside '
                               'them.', required=True)
_OUT_DIR = flags.DEFINE_string('out_dir', '', "Folder mirroring --wav_dir's paths to write "
                               "<stem>.npy into ('' = beside each audio file).")
_SAMPLE_RATE = flags.DEFINE_integer('sample_rate', 16000, 'Sample rate the audio is read at, '
                                    'in Hz (the model\'s).')
_HOP_LENGTH = flags.DEFINE_integer('hop_length', linguistic.DEFAULT_HOP_LENGTH,
                                   'Samples per frame (config.data.features.hop_length).')
_PHONES = flags.DEFINE_string('phones', linguistic.FESTIVAL_PHONES, 'Phone set, space '
                              'separated (config.data.features.phones); others are unknown.')


@cli.exit_on_error(ValueError, OSError)
def main(argv: Sequence[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  if _HOP_LENGTH.value < 1 or _SAMPLE_RATE.value < 1:
    raise ValueError('--hop_length and --sample_rate must be >= 1.')
  out_dir = _OUT_DIR.value or _WAV_DIR.value
  written, skipped = linguistic.write_folder(
      _WAV_DIR.value, out_dir, sample_rate=_SAMPLE_RATE.value, hop_length=_HOP_LENGTH.value,
      phones=linguistic.phone_set(_PHONES.value))
  print(f'wrote {written} feature file(s) under {out_dir}')
  if skipped:
    print(f'skipped {len(skipped)}: '
          + '; '.join(f'{name} ({why})' for name, why in skipped.items()))


if __name__ == '__main__':
  cli.run(main)
