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
Hardware: one core of a shared 2-core x86 CPU (`taskset -c 1`; the other core ran a second
training run, and other processes used the machine too).
Training time measured: 30.8 min wall (1847 s, 700 steps).
Result measured: 4.27 bits/sample on the 30 held-out files (unconditional speech_cpu: 4.23).
  Generated clips are unvoiced speech-like noise: pyin finds voiced frames for kal only (3 %), so
  the per-speaker f0 goal is not met. See experiments/results/README.md.
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
