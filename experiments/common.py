"""Settings that several experiment configs share (as big_vision keeps in configs/common.py).

Not a config itself: the *_cpu.py configs call `cpu_run`.
"""
import os

import ml_collections

# ../shared/data of the repository (this file is REPO/experiments/speech_cpu.py).
SHARED_DATA_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'data'))


def cpu_run(config: ml_collections.ConfigDict, corpus: str, *, segment_length: int,
            num_steps: int, eval_every_steps: int = 500) -> ml_collections.ConfigDict:
  """The settings the four *_cpu.py experiments share, applied to `config` (returned).

  num_steps is what fitted about 30 minutes on the hardware the experiment's docstring
  names (one core next to another run, or both cores).

  Data from ../shared/data/<corpus> with 5 % of the files held out, batch 4 crops, the
  'mulaw_sinusoid' input embedding, AdamW at 5e-3 after 100 warm-up steps then cosine
  decay, no EMA, evaluation and a checkpoint every eval_every_steps, one 0.5 s generated
  clip at the end: the recipe that 5-minute trials on the speech corpus chose (their
  figures: experiments/results/README.md).
  """
  config.data.wav_dir = os.path.join(SHARED_DATA_DIR, corpus)
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
