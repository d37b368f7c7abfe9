"""Multi-speaker WaveNet sized to train in about 30 minutes on one CPU core.

experiments/speech_cpu.py (same model, data and schedule) with the speaker embedding of
experiments/multispeaker.py: global conditioning on the 5 speakers of ../shared/data/speech
(speaker names from its metadata.csv). Sampled with each speaker id, the output's mean f0
is compared with the corpus's measured f0 (speakers.csv) by experiments/report.py.

Command (two runs side by side on the 2-core machine, one core each):
  taskset -c 1 python train.py --config=experiments/multispeaker_cpu.py \
      --workdir=runs/multispeaker_cpu
  python experiments/report.py --workdir=runs/multispeaker_cpu \
      --output_dir=experiments/results/multispeaker
Hardware: one core of a 2-core x86 CPU (`taskset -c 1`; the other core ran speech_cpu.py at
the same time).
Training time measured: 29.5 min wall (4000 steps).
Result measured: 3.42 bits/sample on the 30 held-out files (unconditional speech_cpu: 3.46).
  Generated f0: slt 175.6 Hz (corpus 173.8 Hz) on 90 % of its frames, awb 129.4 Hz (corpus
  128.8 Hz) on 4 %; f3, kal and rms clips unvoiced. So the f0 goal is met for one speaker of five.
  See experiments/results/README.md.
"""
import ml_collections

from experiments import multispeaker
from experiments import speech_cpu


def get_config() -> ml_collections.ConfigDict:
  config = speech_cpu.get_config()
  reference = multispeaker.get_config().model
  config.model.global_conditioning = reference.global_conditioning
  config.model.speaker_embedding_dim = reference.speaker_embedding_dim
  return config
