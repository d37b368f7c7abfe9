"""Mel-spectrogram vocoder WaveNet sized to train in about 30 minutes on one CPU core.

experiments/vocoder.py (local conditioning on 80-bin log-mel frames, hop 256, learned
transposed-convolution upsampling, kernel 3) shrunk to 10 layers = 2 stacks of dilations
1..16 (receptive field 125 samples), residual/gate/skip channels 32/64/64, 4096-sample crops
and 2700 steps (the rest as common.cpu_run), trained on $DATA/speech (all 5
speakers, 5 % of the files held out). experiments/tools/report.py resynthesises held-out utterances from
their mel spectrograms and compares them with Griffin-Lim from the same mel (log-mel distance,
MCD, wide-band PESQ, STOI). Variants (VARIANTS): 'mulaw' (the paper's 8-bit softmax),
'mulaw_preemphasis' (the same on the pre-emphasised waveform, 0.97), 'mixture' (a 10-component
discretized mixture of logistics over 16-bit samples).

Command (one run at a time, pinned to one core):
  taskset -c 0 python train.py --config=experiments/vocoder_cpu.py:VARIANT \
      --workdir=runs/vocoder_cpu_VARIANT --config.data.wav_dir=$DATA/speech \
      --config.sample.every_steps=0
  python -m experiments.tools.report --workdir=runs/vocoder_cpu_VARIANT \
      --output_dir=experiments/results/vocoder/VARIANT
Hardware: one core of a 2-core x86 CPU (`taskset -c 0`), 18-22 min for the 2700 steps.
Result measured (30 held-out files; 4 resynthesised utterances, means; Griffin-Lim PESQ 2.05,
STOI 0.94, log-mel distance 2.0 dB): 'mulaw' 3.35 bits/sample, PESQ 1.04, STOI 0.63, 10.8 dB;
'mulaw_preemphasis' 4.29 bits/sample of the filtered signal, PESQ 1.05, STOI 0.67, 9.9 dB;
'mixture' 10.13 bits per 16-bit sample = 4.34 bits per μ-law class, PESQ 1.02, STOI 0.50,
20.2 dB. No variant beats Griffin-Lim after this little training: see
experiments/results/README.md.
"""
import ml_collections

from experiments import common
from experiments import vocoder


# Variants (`--config=experiments/vocoder_cpu.py:VARIANT`): the output head and pre-emphasis.
VARIANTS = {
    'mulaw': {},
    'mulaw_preemphasis': {'model.preemphasis': 0.97},
    'mixture': {'model.output': 'mixture_of_logistics'},
}


def get_config(variant: str = 'mulaw') -> ml_collections.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f'experiments/vocoder_cpu.py: unknown variant {variant!r}; '
                     f'one of {sorted(VARIANTS)}.')
  config = common.cpu_run(vocoder.get_config(),
                          segment_length=4096,  # 16 mel frames of 256 samples.
                          num_steps=2700)
  config.model.num_layers = 10
  config.model.num_stacks = 2
  config.model.residual_channels = 32
  config.model.gate_channels = 64
  config.model.skip_channels = 64
  config.update_from_flattened_dict(VARIANTS[variant])
  return config
