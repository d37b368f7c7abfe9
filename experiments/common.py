"""Settings that several experiment configs share (as big_vision keeps in configs/common.py).

Not a config itself: the *_cpu.py configs call `cpu_run`.
"""
import ml_collections
from ml_collections import config_dict


def cpu_run(config: ml_collections.ConfigDict, *, segment_length: int, num_steps: int,
            eval_every_steps: int = 500) -> ml_collections.ConfigDict:
  """The settings the four *_cpu.py experiments share, applied to `config` (returned).

  num_steps is what fitted about 30 minutes on the hardware the experiment's docstring
  names (one core next to another run, or both cores).

  The corpus folder is the user's to give (`--config.data.wav_dir=FOLDER`; without it the run
  stops with a one-line error), with 5 % of the files held out, batch 4 crops, the
  'mulaw_sinusoid' input embedding, AdamW at 5e-3 after 100 warm-up steps then cosine
  decay, no EMA, evaluation and a checkpoint every eval_every_steps, one 0.5 s generated
  clip at the end: the recipe that 5-minute trials on the speech corpus chose (their
  figures: experiments/results/README.md).
  """
  config.data.wav_dir = config_dict.placeholder(str)  # None: the user must give it.
  config.data.validation_fraction = 0.05
  config.data.segment_length = segment_length
  config.data.read_threads = 1
  config.train.batch_size = 4
  config.train.num_steps = num_steps
  config.model.embedding_init = 'mulaw_sinusoid'
  config.train.learning_rate = 5e-3
  config.train.warmup_steps = 100
  config.train.ema_decay = 0.0
  config.train.log_every_steps = 25
  config.eval.every_steps = eval_every_steps
  config.eval.num_batches = 8
  config.sample.every_steps = num_steps
  config.sample.seconds = 0.5
  config.checkpoint.every_steps = eval_every_steps
  return config
