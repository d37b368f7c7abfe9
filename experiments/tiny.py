"""Tiny WaveNet that trains on 2 CPU cores in minutes on the embedded corpus.

Command:
  python train.py --config=experiments/tiny.py --workdir=runs/tiny
Hardware: a laptop / 2-core CPU.
Expected result: about 3.8 validation bits/sample after 1000 steps (docs/performance.md).
"""
import ml_collections

from experiments import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.model.num_layers = 10
  config.model.num_stacks = 1
  config.model.residual_channels = 32
  config.model.gate_channels = 64
  config.model.skip_channels = 128
  config.data.segment_length = 2000
  config.train.batch_size = 4
  config.train.num_steps = 1000
  config.train.warmup_steps = 100
  config.train.ema_decay = 0.0
  config.train.log_every_steps = 20
  config.eval.every_steps = 250
  config.eval.num_batches = 4
  config.sample.every_steps = 500
  config.sample.seconds = 0.25
  config.checkpoint.every_steps = 250
  return config
