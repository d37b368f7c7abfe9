"""Scores a folder of audio files under a trained WaveNet (teacher-forced, whole files).

  python evaluate.py --workdir=runs/tiny --wav_dir=FOLDER

Uses the workdir's latest checkpoint (EMA parameters when the run kept them) and its
conditioning: speakers by name from FOLDER/metadata.csv (else each file's folder name), log-mel
features computed from each file with the training statistics (a model on features from files:
each file's <stem>.npy, or those made from its <stem>.lab; see docs/tts.md). Files that cannot
be scored (undecodable, NaN/inf, under 2 samples, a speaker the model does not know, no
features, ...) are skipped:
a line before the last lists them with the reasons, another the metadata.csv rows not used or
overridden. The last line printed is JSON: {"bits_per_sample": ..., "mulaw_bits_per_sample":
..., "num_samples": ..., "num_files": ..., "skipped": {path: reason}, "metadata_problems":
["line N: ...", ...]}: bits per sample of the model's own classes (8-bit μ-law, or 16-bit for
a mixture-of-logistics model) and bits per μ-law class, the unit both kinds of model share.
"""
import json

from absl import flags

from wavenet_jax import checkpointing
from wavenet_jax import cli
from wavenet_jax import evaluation
from wavenet_jax import file_listing

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory (with checkpoints/).')
_WAV_DIR = flags.DEFINE_string('wav_dir', None, 'Folder of .wav/.flac/.ogg files to score.')
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
_CHUNK_LENGTH = flags.DEFINE_integer('chunk_length', evaluation.DEFAULT_CHUNK_LENGTH,
                                     'Positions scored per forward pass (memory vs speed).')
flags.mark_flags_as_required(['workdir', 'wav_dir'])


@cli.exit_on_error(ValueError, FileNotFoundError)
def main(argv: list[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  trained = checkpointing.restore_for_inference(_WORKDIR.value, _STEP.value)
  score = evaluation.score_folder(trained.model, trained.variables, trained.dataset_info,
                                  trained.features, _WAV_DIR.value, _CHUNK_LENGTH.value,
                                  setting='--wav_dir')
  for note in (file_listing.skipped_line(_WAV_DIR.value, score.skipped),
               file_listing.problems_line(_WAV_DIR.value, score.metadata_problems)):
    if note:
      print(note)
  print(json.dumps({'bits_per_sample': score.bits_per_sample,
                    'mulaw_bits_per_sample': score.mulaw_bits_per_sample,
                    'num_samples': score.num_samples, 'num_files': score.num_files,
                    'skipped': dict(score.skipped),
                    'metadata_problems': list(score.metadata_problems)}))


if __name__ == '__main__':
  cli.run(main)
