"""What a trained model needs to know about its dataset, saved with every checkpoint.

Written by the trainer (from the prepared dataset) and read by checkpoint restore, sampling
and evaluation; it depends on numpy alone, so the inference path never imports the data stack.
"""
import dataclasses
import json

import numpy as np

_ARRAYS = ('mel_mean', 'mel_std', 'features_mean', 'features_std')


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
    prepared_as: TFDS full name of the prepared data (for a folder its fingerprint: files,
      sizes, modification times); None in checkpoints written before it was saved.
    features_mean: float32 [channels] what is subtracted from the features from files
      (config.data.features.source 'files' or 'labels'): the training set's mean, or with
      config.data.features.normalisation='min_max' its minimum; or None.
    features_std: float32 [channels] what they are then divided by: their standard deviation,
      or max - min; or None.
  """
  sample_rate: int
  speakers: tuple[str, ...]
  mel_mean: np.ndarray | None
  mel_std: np.ndarray | None
  num_train_examples: int
  num_validation_examples: int
  prepared_as: str | None = None
  features_mean: np.ndarray | None = None
  features_std: np.ndarray | None = None

  def to_json(self) -> str:
    fields = dataclasses.asdict(self)
    for key in _ARRAYS:
      if fields[key] is not None:
        fields[key] = fields[key].tolist()
    fields['speakers'] = list(self.speakers)
    return json.dumps(fields)

  @classmethod
  def from_json(cls, text: str) -> 'DatasetInfo':
    fields = json.loads(text)
    for key in _ARRAYS:
      if fields.get(key) is not None:  # .get: info saved before features_mean/std.
        fields[key] = np.asarray(fields[key], dtype=np.float32)
    fields['speakers'] = tuple(fields['speakers'])
    return cls(**fields)

  def resumed_from(self, saved: 'DatasetInfo', *, speaker_conditioned: bool,
                   grow_speakers: bool, setting: str) -> tuple['DatasetInfo', list[str]]:
    """This dataset's info for resuming a checkpoint trained on `saved`, and notices.

    The statistics are the checkpoint's. Speakers are matched by name, so that each keeps the
    embedding row it was trained on: the result lists the checkpoint's speakers in its order
    (one no longer in the dataset keeps its row, with a notice), then new ones (only with
    grow_speakers).

    Args:
      saved: the info saved with the checkpoint.
      speaker_conditioned: whether the model has a speaker embedding (else the speakers
        may change freely).
      grow_speakers: config.train.grow_speakers: new speakers get new rows.
      setting: what names the dataset in messages, e.g. "config.data.wav_dir='/data'".

    Returns:
      (the info to train with and save, one line per notice: the data changed, speakers
      missing or added).

    Raises:
      ValueError: in one line naming `setting`, for speakers the checkpoint does not know
        (without grow_speakers).
    """
    # The checkpoint's statistics: its model's features must not shift under it (and a run
    # started from another run's checkpoint keeps that run's, `checkpointing.InitSource`).
    resumed = dataclasses.replace(self, **{key: getattr(saved, key) for key in _ARRAYS
                                           if getattr(saved, key) is not None})
    notices = []
    if saved.prepared_as is not None and saved.prepared_as != self.prepared_as:
      notices.append(f'{setting} changed since the checkpoint (prepared again: '
                     f'{saved.prepared_as} -> {self.prepared_as}); training goes on with the '
                     'new data.')
    if not speaker_conditioned:
      return resumed, notices
    new = [name for name in self.speakers if name not in saved.speakers]
    missing = [name for name in saved.speakers if name not in self.speakers]
    if new and not grow_speakers:
      raise ValueError(
          f'{setting} holds speaker(s) {", ".join(new)} that the checkpoint was not trained on '
          f'(its speakers: {", ".join(saved.speakers)}): set config.train.grow_speakers=True '
          'to add embedding rows for them, or use a new --workdir.')
    if missing:
      notices.append(f'Speaker(s) {", ".join(missing)} of the checkpoint have no audio in '
                     f'{setting} now: their embedding rows are kept, not trained.')
    if new:
      notices.append(f'config.train.grow_speakers: new embedding rows for speaker(s) '
                     f'{", ".join(new)} (ids {len(saved.speakers)}-'
                     f'{len(saved.speakers) + len(new) - 1}).')
    return dataclasses.replace(resumed, speakers=saved.speakers + tuple(new)), notices
