"""The paper's text-to-speech (§3.2) in miniature: linguistic features + log-F0 + the speaker.

The speech_cpu.py model (10 layers, dilations 1..512, receptive field 1024 samples: longer
than the 160-sample pitch period of the 100 Hz male voice; residual/gate/skip 32/64/128,
4000-sample crops, common.cpu_run's recipe) on the festival TTS corpus $DATA/tts (two festival voices, 480
utterances, 30 min), conditioned on the speaker and, every 5 ms (hop 80), on the linguistic
features that preparing the folder makes from each utterance's .lab and its audio
(config.data.features.source='labels', wavenet_jax/linguistic.py: the previous, current and
next phone one-hot over festival's 48 phones + unknown, the position in the phone and its
duration, vowel and stress flags, pYIN log-F0 interpolated through unvoiced frames, a voiced
flag: 153 channels), repeated to the audio rate. Preparing computes them once (pYIN: about
2 s per utterance per core) and stores them with the prepared audio.

Variants (`--config=experiments/tts_cpu.py:VARIANT`): 'labels' (the default), 'no_features'
(the same model and data without the linguistic features: the baseline that says what the
features are worth in bits), 'learned_upsampling' (transposed convolutions 4 x 4 x 5 instead
of repetition).

Command (alone on the machine):
  python train.py --config=experiments/tts_cpu.py --workdir=runs/tts_cpu \
      --config.data.wav_dir=$DATA/tts
  python evaluate.py --workdir=runs/tts_cpu --wav_dir=HELD_OUT_FOLDER_OF_WAV_AND_LAB
  python sample.py --workdir=runs/tts_cpu --output=tts.wav --speaker=slt_hts \
      --features=FEATURES.npy   # from python -m wavenet_jax.features --wav_dir=... --out_dir=...
Hardware: both cores of a 2-core x86 CPU, nothing else running.
Training time: not measured yet (num_steps is speech_cpu.py's 6800 less a guess for the
  conditioning's cost); checked here: 50 steps on 24 of the utterances train, evaluate and
  sample end to end (docs/tts.md).
Result: not measured yet.
"""
import ml_collections

from experiments import common
from experiments import tiny

# Variants: the local conditioning and its upsampling.
VARIANTS = {
    'labels': {},
    'no_features': {'model.local_conditioning': False},
    'learned_upsampling': {'model.upsample_method': 'transposed'},
}


def get_config(variant: str = 'labels') -> ml_collections.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f'experiments/tts_cpu.py: unknown variant {variant!r}; '
                     f'one of {sorted(VARIANTS)}.')
  config = common.cpu_run(tiny.get_config(), segment_length=4000, num_steps=6000)
  config.data.features.source = 'labels'
  config.data.features.hop_length = 80  # 5 ms frames.
  config.model.global_conditioning = True
  config.model.local_conditioning = True
  config.model.upsample_method = 'repeat'
  config.model.upsample_scales = (4, 4, 5)  # Product = the hop (learned_upsampling).
  config.update_from_flattened_dict(VARIANTS[variant])
  return config
