"""What a trained model needs to know about its dataset, saved with every checkpoint.

Written by the trainer (from the prepared dataset) and read by checkpoint restore, sampling
and evaluation; it depends on numpy alone, so the inference path never imports the data stack.
"""
import dataclasses
import json

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the model and checkpoints need to know about the dataset.

  Attributes:
    sample_rate: audio sample rate in Hz.
    speakers: speaker names; index = speaker id.
    mel_mean: float32 [n_mels] mean of the training log-mel features, or None.
    mel_std: float32 [n_mels] their standard deviation, or None.
    num_train_examples: number of training clips.
    num_validation_examples: number of validation clips.
  """
  sample_rate: int
  speakers: tuple[str, ...]
  mel_mean: np.ndarray | None
  mel_std: np.ndarray | None
  num_train_examples: int
  num_validation_examples: int

  def to_json(self) -> str:
    fields = dataclasses.asdict(self)
    for key in ('mel_mean', 'mel_std'):
      if fields[key] is not None:
        fields[key] = fields[key].tolist()
    fields['speakers'] = list(self.speakers)
    return json.dumps(fields)

  @classmethod
  def from_json(cls, text: str) -> 'DatasetInfo':
    fields = json.loads(text)
    for key in ('mel_mean', 'mel_std'):
      if fields[key] is not None:
        fields[key] = np.asarray(fields[key], dtype=np.float32)
    fields['speakers'] = tuple(fields['speakers'])
    return cls(**fields)
