"""Mel-spectrogram vocoder: a WaveNet locally conditioned on log-mel frames.

Local conditioning (van den Oord et al., 2016, section 3.1; Shen et al., 2018): frame-rate
log-mel features (config.data.mel: 80 bins, hop 256 at 16 kHz, normalised with training-set
statistics saved in the checkpoint) are upsampled to the audio rate by learned transposed
convolutions (4 x 4 x 4 x 4 = 256) and added to every layer's gate. Kernel 3 and 4 stacks of
1..32 give a 505-sample receptive field: the mel carries the long-range structure.

Command:
  python train.py --config=experiments/vocoder.py --workdir=runs/vocoder \
      --config.data.wav_dir=$DATA/real/allison
  python evaluate.py --workdir=runs/vocoder --wav_dir=FOLDER   # mel from each file itself
Hardware: one GPU (global batch 16 x 8192-sample crops); on a 2-core CPU it trains, slowly.
Expected result: not yet measured here. A vocoder's validation bits/sample is far below an
unconditional model's on the same audio, and resynthesis from a file's mel (sample.py) is
intelligible speech in the original voice.
"""
import ml_collections

from experiments import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.model.local_conditioning = True
  config.model.num_layers = 24
  config.model.num_stacks = 4
  config.model.kernel_size = 3
  config.model.residual_channels = 128
  config.model.gate_channels = 256
  config.model.skip_channels = 128
  config.model.upsample_method = 'transposed'
  config.model.upsample_scales = (4, 4, 4, 4)
  config.data.segment_length = 8192  # 32 mel frames of 256 samples.
  config.train.warmup_steps = 2000
  return config
