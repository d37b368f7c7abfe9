"""Mel-spectrogram vocoder WaveNet sized to train in about 30 minutes on one CPU core.

experiments/vocoder.py (local conditioning on 80-bin log-mel frames, hop 256, learned
transposed-convolution upsampling, kernel 3) shrunk to 10 layers = 2 stacks of dilations
1..16 (receptive field 125 samples), residual/gate/skip channels 32/64/64, 4096-sample crops
and 2700 steps (the rest as common.cpu_run), trained on ../shared/data/speech (all 5
speakers, 5 % of the files held out). experiments/report.py resynthesises held-out utterances from
their mel spectrograms and compares them with Griffin-Lim from the same mel.

Command (two runs side by side on the 2-core machine, one core each):
  taskset -c 0 python train.py --config=experiments/vocoder_cpu.py --workdir=runs/vocoder_cpu
  python experiments/report.py --workdir=runs/vocoder_cpu --output_dir=experiments/results/vocoder
Hardware: one core of a 2-core x86 CPU (`taskset -c 0`; the other core ran music_cpu.py at
the same time).
Training time measured: 26.1 min wall (2700 steps).
Result measured: 3.35 bits/sample on the 30 held-out files; resynthesis log-mel distance 10.7 dB
  against Griffin-Lim's 2.1 dB (MCD 41.1 vs 8.6 dB): the WaveNet vocoder does not beat Griffin-Lim
  after this little training. The speech_cpu model shape (receptive field 1024 instead of 125)
  with the same conditioning, on both cores for 3500 steps (31.5 min), was no better: 3.36
  bits/sample, 10.2 dB, MCD 40.7. See experiments/results/README.md.
"""
import ml_collections

from experiments import common
from experiments import vocoder


# Variants (`--config=experiments/vocoder_cpu.py:VARIANT`): the output head and pre-emphasis.
VARIANTS = {
    'mulaw': {},
    'mulaw_preemphasis': {'data.preemphasis': 0.97},
    'mixture': {'model.output': 'mixture_of_logistics'},
}


def get_config(variant: str = 'mulaw') -> ml_collections.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f'experiments/vocoder_cpu.py: unknown variant {variant!r}; '
                     f'one of {sorted(VARIANTS)}.')
  config = common.cpu_run(vocoder.get_config(), 'speech',
                              segment_length=4096,  # 16 mel frames of 256 samples.
                              num_steps=2700)
  config.model.num_layers = 10
  config.model.num_stacks = 2
  config.model.residual_channels = 32
  config.model.gate_channels = 64
  config.model.skip_channels = 64
  config.update_from_flattened_dict(VARIANTS[variant])
  return config
