"""Teacher-forced scoring of whole audio files: bits per sample under a trained WaveNet.

A file of T samples (classes x of the model's codec, after the checkpoint's pre-emphasis) is
scored in two units: bits per sample of the model's own classes (8-bit μ-law, or 16-bit
PCM for the mixture head), and bits per μ-law class (`Head.mulaw_log_prob`; the
same for a softmax model), in which models of either head compare on the same files. It is
scored on its T - 1 next-sample predictions
(logits[t] against x[t + 1]), exactly as one forward pass over the whole file would score
it, but in chunks of a fixed length so that memory and compilation do not depend on the file:
the chunk predicting x[s + 1 .. e] reads x[a .. e - 1] with a <= s - receptive_field + 1
(a multiple of hop_length, so that local-conditioning frames align), which gives each scored
position its full receptive field.

Conditioning is that of the checkpoint: speaker ids by name (a folder's metadata.csv, else
the file's folder name, as when the dataset was prepared), log-mel features computed from
the file itself (features from files: read from its `<stem>.npy`, or made from its `<stem>.lab`)
and normalised with the training statistics saved with the checkpoint.

As preparation does, a folder's files that cannot be scored (undecodable, NaN/inf samples,
fewer than 2 samples, a speaker the model does not know, a name that is not UTF-8, a
metadata row whose file is missing) are skipped and listed with the reason, and the others
scored: one bad file in a thousand does not cost the score of the rest.
"""
from collections.abc import Mapping
import dataclasses
import functools
import math
import pathlib
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from wavenet_jax import audio as audio_lib
from wavenet_jax import distributions
from wavenet_jax import file_listing
from wavenet_jax.dataset_info import DatasetInfo
from wavenet_jax import features as features_lib
from wavenet_jax.models import WaveNet

# Scored positions per chunk.
DEFAULT_CHUNK_LENGTH = 16_000


@dataclasses.dataclass(frozen=True)
class Score:
  """Total cross-entropy of a set of files.

  Attributes:
    nats: Σ -ln p(x[t + 1] | x[..t]) over all scored positions.
    mulaw_nats: the same for the μ-law class of x[t + 1] (= nats for a softmax model).
    num_samples: number of scored positions (Σ over files of length - 1).
    num_files: number of files scored.
    skipped: files not scored (path relative to the folder -> reason).
    metadata_problems: the folder's metadata.csv rows not used or overridden ('line N: ...').
  """
  nats: float
  mulaw_nats: float
  num_samples: int
  num_files: int
  skipped: Mapping[str, str] = dataclasses.field(default_factory=dict)
  metadata_problems: tuple[str, ...] = ()

  @property
  def bits_per_sample(self) -> float:
    return nats_to_bits(self.nats) / max(self.num_samples, 1)

  @property
  def mulaw_bits_per_sample(self) -> float:
    return nats_to_bits(self.mulaw_nats) / max(self.num_samples, 1)


def nats_to_bits(nats: float) -> float:
  """Nats (natural-log units of information) -> bits."""
  return nats / math.log(2.0)


@functools.partial(jax.jit, static_argnames='model')
def _chunk_nats(model: WaveNet, variables: Any, audio: jax.Array, weights: jax.Array,
                global_cond: Optional[jax.Array], local_cond: Optional[jax.Array]) -> jax.Array:
  """Σ weights[t] * -ln p(audio[t + 1] | audio[..t]) of the classes and of their μ-law classes.

  audio int32 [1, L], weights [1, L - 1]; returns float32 [2].
  """
  logits = model.apply(variables, audio, global_cond, local_cond)
  return jnp.stack(distributions.next_sample_nats(model.distribution, logits, audio, weights))


def score_classes(model: WaveNet, variables: Any, classes: np.ndarray,
                  speaker: Optional[int] = None, mel: Optional[np.ndarray] = None,
                  chunk_length: int = DEFAULT_CHUNK_LENGTH) -> tuple[float, float]:
  """Total nats of the T - 1 next-sample predictions of one file.

  Args:
    model, variables: the WaveNet and its {'params': ...}.
    classes: int32 [T] classes of the model's codec, T >= 2.
    speaker: the speaker id, for speaker-conditioned models.
    mel: float32 [>= ceil(T / hop_length), channels] normalised features, for locally
      conditioned models.
    chunk_length: scored positions per forward pass.

  Returns:
    (nats of the classes, nats of their μ-law classes).
  """
  hop = model.hop_length if model.local_cond_channels else 1
  context = -(-(model.receptive_field - 1) // hop) * hop  # Receptive field, rounded up to hops.
  window = context + chunk_length + hop  # Input samples per chunk (fixed: one compilation).
  global_cond = None if speaker is None else jnp.asarray([speaker], jnp.int32)
  num_targets = len(classes) - 1
  total = np.zeros(2)
  for start in range(0, num_targets, chunk_length):
    stop = min(start + chunk_length, num_targets)
    first = max(0, (start - context) // hop * hop)
    inputs = np.full((1, window), model.silence_class, np.int32)
    inputs[0, :stop + 1 - first] = classes[first:stop + 1]
    weights = np.zeros((1, window - 1), np.float32)
    weights[0, start - first:stop - first] = 1.0
    local_cond = None
    if mel is not None:
      num_frames = audio_lib.num_mel_frames(window, hop)
      frames = np.zeros((1, num_frames, mel.shape[1]), np.float32)
      chunk_frames = mel[first // hop:first // hop + num_frames]
      frames[0, :len(chunk_frames)] = chunk_frames
      local_cond = jnp.asarray(frames)
    total += np.asarray(_chunk_nats(model, variables, jnp.asarray(inputs),
                                    jnp.asarray(weights), global_cond, local_cond), np.float64)
  return float(total[0]), float(total[1])


def score_waveform(model: WaveNet, variables: Any, waveform: np.ndarray,
                   features: Optional[features_lib.LogMel] = None, speaker: Optional[int] = None,
                   chunk_length: int = DEFAULT_CHUNK_LENGTH) -> tuple[float, float]:
  """Total nats of one waveform's T - 1 next-sample predictions, with its own mel for vocoders.

  Args:
    waveform: float32 [T] at the model's sample rate, T >= 2 (encoded with the model's
      codec, its pre-emphasis included).
    features: the checkpoint's (`TrainedModel.features`), for locally conditioned models:
      they are computed from the waveform itself (not pre-emphasised).
    speaker: the speaker id, for speaker-conditioned models.

  Returns:
    (nats, μ-law nats) as `score_classes`.
  """
  mel = features(waveform) if model.local_cond_channels else None
  return score_classes(model, variables, model.codec.encode(waveform), speaker, mel,
                       chunk_length)


def _scorable(entry: file_listing.AudioFileEntry, root: pathlib.Path, model: WaveNet,
              dataset_info: DatasetInfo, features: Optional[features_lib.Features]
              ) -> tuple[np.ndarray, Optional[int], Optional[np.ndarray]] | str:
  """(waveform, speaker id, normalised features) of a file that can be scored, else the
  reason it cannot."""
  try:
    waveform = audio_lib.load_audio(root / entry.file, dataset_info.sample_rate)
  except audio_lib.AudioFileError as error:
    return error.reason
  if waveform.size < 2:
    return f'needs at least 2 samples to score, has {waveform.size}'
  speaker = None
  if model.num_speakers:
    if entry.speaker not in dataset_info.speakers:
      return (f'speaker {entry.speaker!r} is not one the model knows '
              f'({", ".join(dataset_info.speakers)})')
    speaker = dataset_info.speakers.index(entry.speaker)
  if not model.local_cond_channels:
    return waveform, speaker, None
  try:
    return waveform, speaker, features.of_file(root / entry.file, waveform)
  except ValueError as error:
    return str(error)


def score_folder(model: WaveNet, variables: Any, dataset_info: DatasetInfo,
                 features: Optional[features_lib.Features], wav_dir: str, chunk_length: int = DEFAULT_CHUNK_LENGTH,
                 setting: str = 'wav_dir') -> Score:
  """Scores every usable audio file under wav_dir with the model's conditioning.

  Files that cannot be scored are skipped and listed in Score.skipped with the reason (see
  the module docstring).

  Args:
    dataset_info: of the checkpoint (speaker names, sample rate).
    features: the checkpoint's (`TrainedModel.features`); None: not locally conditioned.
      Features from files are read from `<stem>.npy` beside each audio file, or made from its
      `<stem>.lab` (`features.FileFeatures.of_file`); a file without them is skipped.
    wav_dir: a folder of .wav/.flac/.ogg files, optionally with a metadata.csv.
    setting: the flag the user gave wav_dir with, named in errors.

  Raises:
    ValueError: naming `setting`, if wav_dir is not a folder, holds no audio file or none
      that can be scored (listing each file and why); naming metadata.csv if it cannot be
      read.
  """
  listing = file_listing.scan_folder(wav_dir, setting)
  root = pathlib.Path(wav_dir).expanduser().resolve()  # As scan_folder lists it.
  skipped = listing.skipped
  nats = np.zeros(2)
  num_samples = num_files = 0
  for entry in listing.entries:
    scorable = _scorable(entry, root, model, dataset_info, features)
    if isinstance(scorable, str):
      skipped[entry.file] = scorable
      continue
    waveform, speaker, frames = scorable
    nats += score_classes(model, variables, model.codec.encode(waveform), speaker, frames,
                          chunk_length)
    num_samples += waveform.size - 1
    num_files += 1
  if not num_files:
    raise ValueError(f'{setting}={wav_dir!r}: no file can be scored. '
                     f'{file_listing.skipped_line(wav_dir, skipped)}')
  return Score(nats=float(nats[0]), mulaw_nats=float(nats[1]), num_samples=num_samples,
               num_files=num_files, skipped=skipped,
               metadata_problems=listing.problems)
