r"""Degraded log-mel frames: the "predicted" mels of GTA training in miniature (docs/tts.md).

  python -m experiments.tools.degrade_mels --workdir=runs/vocoder --wav_dir=$DATA/speech \
      --out_dir=MIRROR [--smooth_frames=5] [--noise_std=0.2] [--seed=0]

No acoustic model exists here, so its teacher-forced mels are imitated the way acoustic models
err: too smooth over time, and slightly off. For every audio file of --wav_dir (as training
lists them), the log-mel of the --workdir vocoder's own convention (`features.LogMel`: the
values it is trained on, before its normalisation) is averaged over a centred window of
--smooth_frames frames (the ends repeat their frame), and Gaussian noise of standard deviation
--noise_std (natural-log units, the same draw for a file whatever the others) is added. The
result is written as float32 [frames, n_mels] `<stem>.npy` at the file's relative path under
--out_dir: the frames of `config.data.features.source='files'` with
`config.data.features.dir=MIRROR`. Files that cannot be decoded are skipped and listed.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import pathlib

from absl import flags
import numpy as np

from experiments.tools.mel_degradation import degrade, file_rng
from wavenet_jax import audio as audio_lib
from wavenet_jax import checkpointing
from wavenet_jax import file_listing
from wavenet_jax.features import LogMel

_WORKDIR = flags.DEFINE_string('workdir', None, 'The mel vocoder whose log-mel convention the '
                               'frames take (its latest checkpoint).', required=True)
_WAV_DIR = flags.DEFINE_string('wav_dir', None, 'Folder of the audio files.', required=True)
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Folder mirroring wav_dir\'s paths for the '
                               '<stem>.npy frames.', required=True)
_SMOOTH_FRAMES = flags.DEFINE_integer('smooth_frames', 5, 'Frames of the centred moving average '
                                      '(odd; 1 = no smoothing).')
_NOISE_STD = flags.DEFINE_float('noise_std', 0.2, 'Standard deviation of the Gaussian noise '
                                'added to the smoothed log-mel (natural-log units).')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the noise (each file\'s draw also depends on '
                             'its path).')


@cli.exit_on_error(checkpointing.NoCheckpointError, ValueError)
def main(argv: list[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  smooth_frames, noise_std = _SMOOTH_FRAMES.value, _NOISE_STD.value
  if smooth_frames < 1 or smooth_frames % 2 == 0:
    raise ValueError(f'--smooth_frames={smooth_frames}: must be odd and >= 1 (a centred window).')
  if noise_std < 0:
    raise ValueError(f'--noise_std={noise_std}: must be >= 0.')
  listing = file_listing.scan_folder(_WAV_DIR.value, '--wav_dir')
  features = checkpointing.restore_for_inference(_WORKDIR.value).features
  if not isinstance(features, LogMel):
    raise ValueError(f'--workdir={_WORKDIR.value}: not a mel vocoder (its features: '
                     f'{features and features.describe()}).')
  root, out_dir = pathlib.Path(_WAV_DIR.value).expanduser(), pathlib.Path(_OUT_DIR.value)
  skipped, written = dict(listing.skipped), 0
  for entry in listing.entries:
    try:
      waveform = audio_lib.load_audio(root / entry.file, features.sample_rate)
    except audio_lib.AudioFileError as error:
      skipped[entry.file] = error.reason
      continue
    frames = degrade(audio_lib.log_mel(waveform, features.sample_rate, features),
                     smooth_frames, noise_std, file_rng(_SEED.value, entry.file))
    target = (out_dir / entry.file).with_suffix('.npy')
    target.parent.mkdir(parents=True, exist_ok=True)
    np.save(target, frames)
    written += 1
  print(f'{written} files of {features.n_mels}-band log-mel frames (moving average of '
        f'{smooth_frames} frames + noise std {noise_std:g}) written under {out_dir}.')
  note = file_listing.skipped_line(_WAV_DIR.value, skipped)
  if note:
    print(note)


if __name__ == '__main__':
  cli.run(main)
