"""Unconditional music WaveNet with a longer receptive field (solo piano).

Music needs more context than speech (van den Oord et al., 2016, section 3.2): 40 layers =
4 stacks of dilations 1..512 (receptive field 4093 samples, 0.26 s at 16 kHz), wider residual
and skip channels, and longer crops.

Command:
  python train.py --config=experiments/music.py --workdir=runs/music \
      --config.data.wav_dir=$DATA/music
Hardware: one GPU (global batch 16 x 16000-sample crops); too slow for a 2-core CPU.
Expected result: not yet measured here. Generated clips should have piano timbre and
note-like events; without conditioning they do not hold a melody for more than a second.
"""
import ml_collections

from experiments import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.model.num_layers = 40
  config.model.num_stacks = 4
  config.model.residual_channels = 128
  config.model.gate_channels = 256
  config.model.skip_channels = 512
  config.data.segment_length = 16000
  config.data.top_db = 40.0  # Trim silent lead-in and tail of the renderings.
  config.sample.seconds = 4.0
  return config
