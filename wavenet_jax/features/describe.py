r"""Prints what a checkpoint's model is conditioned on: for a vocoder, its mel convention.

  python -m wavenet_jax.features.describe --workdir=runs/vocoder [--step=N]

For a mel vocoder, `LogMel.describe`: sample rate, STFT, framing, mel filterbank, log, the
training set's statistics, and the convention as `sample.py --features_convention` takes it
(other models' mels must match it, or be converted: `features.conventions`). For a model
conditioned on features from files, `FileFeatures.describe`: their channels, hop, source
and statistics.
"""
from collections.abc import Sequence

from absl import flags

from wavenet_jax import checkpointing
from wavenet_jax import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Training run directory.', required=True)
_STEP = flags.DEFINE_integer('step', None, 'Checkpoint step; default the latest.')


@cli.exit_on_error(checkpointing.NoCheckpointError, ValueError)
def main(argv: Sequence[str]) -> None:
  del argv  # cli.run checks that there are no positional arguments.
  trained = checkpointing.restore_for_inference(_WORKDIR.value, _STEP.value)
  print(f'{_WORKDIR.value} (step {trained.step}):')
  features = trained.features
  print('not locally conditioned: the model reads no frames.' if features is None
        else features.describe())


if __name__ == '__main__':
  cli.run(main)
