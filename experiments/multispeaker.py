"""Multi-speaker WaveNet: the paper-like speech model with a learned speaker embedding.

Global conditioning (van den Oord et al., 2016, section 3.1): every layer adds a projection of
the speaker's embedding to its gate. Speakers come from the folder's metadata.csv (`speaker`
column) or from the sub-folder names; sample one with sample.py --speaker=NAME.

Command:
  python train.py --config=experiments/multispeaker.py --workdir=runs/multispeaker \
      --config.data.wav_dir=$DATA/speech
  python evaluate.py --workdir=runs/multispeaker --wav_dir=FOLDER_WITH_METADATA_CSV
Hardware: one GPU (global batch 16 x 8000-sample crops); on a 2-core CPU use
  --config.model.num_layers=10 --config.model.num_stacks=1 --config.data.segment_length=2000.
Expected result: not yet measured here. Validation bits/sample should fall below the
unconditional default.py's on the same data (the speaker id removes speaker uncertainty),
and clips sampled with different --speaker values should differ in pitch and timbre.
"""
import ml_collections

from experiments import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.model.global_conditioning = True
  config.model.speaker_embedding_dim = 16
  return config
