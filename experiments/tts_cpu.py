"""The paper's text-to-speech (§3.2) in miniature: linguistic features + log-F0 + the speaker.

The speech_cpu.py model (10 layers, dilations 1..512, receptive field 1024 samples: longer
than the 160-sample pitch period of the 100 Hz male voice; residual/gate/skip 32/64/128,
4000-sample crops, common.cpu_run's recipe) on the festival TTS corpus $DATA/tts (two festival
voices, 480 utterances, 30 min), conditioned on the speaker and, every 5 ms (hop 80), on the
linguistic features that preparing the folder makes from each utterance's .lab and its audio
(config.data.features.source='labels', wavenet_jax/linguistic.py: the previous, current and
next phone one-hot over festival's 48 phones + unknown, the position in the phone and its
duration, vowel and stress flags, pYIN log-F0 interpolated through unvoiced frames, a voiced
flag: 153 channels), repeated to the audio rate. Preparing computes them once (pYIN: about
2 s per utterance per core) and stores them with the prepared audio. The one-hots and flags
are read as they are and the other channels standardised (normalisation
'standard_non_binary'): standardised, a rare phone's 1 became 20-100 and the features cost
bits.

Variants (`--config=experiments/tts_cpu.py:VARIANT`): 'labels' (the default), 'no_features'
(the same model and data without the linguistic features: the baseline that says what the
features are worth in bits), 'learned_upsampling' (the features projected to 32 channels at
frame rate, then transposed convolutions 4 x 4 x 5 instead of repetition).

Command (one core: `taskset -c 0`; the same for no_features, then for both):
  python train.py --config=experiments/tts_cpu.py --workdir=runs/tts_cpu \
      --config.data.wav_dir=$DATA/tts
  python evaluate.py --workdir=runs/tts_cpu --wav_dir=HELD_OUT  # .wav + .lab, features made
  python -m experiments.tools.tts_report --workdir=runs/tts_cpu \
      --output_dir=experiments/results/tts --num_utterances=28 --generate_seconds=3
  python sample.py --workdir=runs/tts_cpu --output=tts.wav --speaker=slt_hts \
      --features=FEATURES.npy   # from python -m wavenet_jax.features --wav_dir=... --out_dir=...
Hardware: one core of a 2-core x86 CPU (`taskset -c 0`), the other core running another
  variant: 1.8-2.4 steps/s logged; no_features 2.8-2.9 alone.
Measured (2026-12-06, commit 2ceb344; all figures and commands in
  experiments/results/tts/README.md): preparing the folder 11.7 min, once; 3200 steps in 24
  min. Whole held-out files (28, evaluate.py): 3.1759 bits/sample, no_features 3.2117 (the
  order-2 count model 3.9425): the features are worth 0.036 bits/sample. Generated from the
  held-out sentences' features (2.6 s each, seeds 0-2): the female voice follows its F0
  (correlation 0.83-0.85, RMSE 66-78 cents, voicing agreement 0.76-0.78; no_features -0.01,
  166 cents, 0.47), timing and pauses follow the labels (log-mel distance 11.4-11.6 dB,
  no_features 22.4); the male voice stays unvoiced (0-28 of 8,789 frames voiced in both).
"""
import ml_collections

from experiments import common
from experiments import tiny

# Variants: the local conditioning and its upsampling.
VARIANTS = {
    'labels': {},
    'no_features': {'model.local_conditioning': False},
    'learned_upsampling': {'model.upsample_method': 'transposed', 'model.local_cond_projection': 32},
}


def get_config(variant: str = 'labels') -> ml_collections.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f'experiments/tts_cpu.py: unknown variant {variant!r}; '
                     f'one of {sorted(VARIANTS)}.')
  config = common.cpu_run(tiny.get_config(), segment_length=4000, num_steps=3200)
  config.data.features.source = 'labels'
  config.data.features.hop_length = 80  # 5 ms frames.
  # One-hots and flags as they are, the rest standardised (results/tts: standardised one-hots
  # cost bits; 'min_max' saved bits but the F0 was followed less).
  config.data.features.normalisation = 'standard_non_binary'
  config.model.global_conditioning = True
  config.model.local_conditioning = True
  config.model.upsample_method = 'repeat'
  config.model.upsample_scales = (4, 4, 5)  # Product = the hop (learned_upsampling).
  config.update_from_flattened_dict(VARIANTS[variant])
  return config
