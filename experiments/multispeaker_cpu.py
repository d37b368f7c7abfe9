"""Multi-speaker WaveNet sized to train in about 30 minutes on both cores of a 2-core CPU.

The speech_cpu.py model and data (10 layers, dilations 1..512, residual/gate/skip 32/64/128,
4000-sample crops, common.cpu_run's recipe) with the speaker embedding of
experiments/multispeaker.py: global conditioning on the 5 speakers of $DATA/speech
(speaker names from its metadata.csv), and 6800 steps, the number that fits 30 minutes on both
cores. Sampled with each speaker id, the output's mean f0 is compared with the corpus's measured
f0 (speakers.csv) by experiments/tools/report.py.

Command (alone on the machine):
  python train.py --config=experiments/multispeaker_cpu.py --workdir=runs/multispeaker_cpu \
      --config.data.wav_dir=$DATA/speech
  python -m experiments.tools.report --workdir=runs/multispeaker_cpu \
      --output_dir=experiments/results/multispeaker --nocount_baseline
Hardware: both cores of a 2-core x86 CPU, nothing else running.
Training time measured: 26.7 min wall (6800 steps, 3.2-4.8 steps/s).
Result measured: 3.33 bits/sample on the 30 held-out files (per speaker: slt 2.97, awb 3.02,
  kal 3.22, rms 3.28, f3 4.36). Generated f0 (4 clips of 3 s per speaker, seed 0): slt 172.3 Hz
  (corpus 173.8 Hz) on 93 % of its frames, rms 104.6 Hz (corpus 102.0 Hz) on 10 %, awb 126.6 Hz
  (corpus 128.8 Hz) on 2 %; f3 and kal clips unvoiced. See experiments/results/README.md.
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
