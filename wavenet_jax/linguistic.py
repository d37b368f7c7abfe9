"""The paper's linguistic features (§3.2): phone identities, their context and timing, log-F0.

A `.lab` file beside each audio file gives its phones (festival's segmentation: a header line,
then tab-separated `start end phone vowel stress ...` rows, times in seconds, contiguous; see
../shared/data/tts/README.md). `utterance_features` turns it and the audio into float32
[frames, num_channels(phones)] frames, frame k covering samples [k * hop, (k + 1) * hop)
(judged at its centre), channels in this order:

  [0, P + 1)            one-hot of the previous phone (P = len(phones); index P: a phone not
  [P + 1, 2 (P + 1))    in the set), the current phone,
  [2 (P + 1), 3 (P + 1)) and the next one (the first and last phones' outer neighbours: 'pau')
  3 (P + 1)             position inside the current phone, in [0, 1)
  + 1                   the current phone's duration in seconds
  + 2, + 3              its vowel and stress flags (from the .lab)
  + 4                   log-F0 (natural log of Hz), interpolated through unvoiced frames
  + 5                   voiced flag (1: the tracker calls the frame voiced and it is no pause)

The phone set is config.data.features.phones (saved with the checkpoint's config), so a later
utterance is encoded as the training ones were; festival's CMU/radio set by default.

F0: librosa's pYIN (probabilistic YIN, Mauch & Dixon 2014), with the corpus README's ranges.
It is already a dependency (the 'librosa' extra, installed for silence trimming and the
metrics), maintained, deterministic, and what the corpus's F0 figures were measured with;
pyworld and praat-parselmouth are faster but would be new compiled dependencies. Pauses are
unvoiced whatever the tracker says (the kal voice's pauses hold a faint periodic residual that
pYIN calls voiced). librosa is imported when F0 is computed, never by `import wavenet_jax`.
"""
from collections.abc import Sequence
import dataclasses
import os
import pathlib

import numpy as np

# Festival's phone set for US English (radio/CMU), 'pau' = pause; 48 phones.
FESTIVAL_PHONES = ('pau aa ae ah ao aw ax axr ay b ch d dh dx eh el em en er ey f g hh hv ih iy '
                   'jh k l m n ng nx ow oy p r s sh t th uh uw v w y z zh')
PAUSE = 'pau'
DEFAULT_HOP_LENGTH = 80  # 5 ms at 16 kHz, the paper's frame rate for linguistic features.
# pYIN's search range and window (../shared/data/tts/README.md's).
F0_MIN, F0_MAX, F0_FRAME_LENGTH = 60.0, 400.0, 1024
# Timing, flag and F0 channels after the three one-hots.
_EXTRA_CHANNELS = 6
AUDIO_SUFFIXES = ('.wav', '.flac', '.ogg')


@dataclasses.dataclass(frozen=True)
class Segment:
  """One phone of a .lab file: [start, end) in seconds, its name and flags."""
  start: float
  end: float
  phone: str
  vowel: int
  stress: int


def phone_set(phones: str | Sequence[str]) -> tuple[str, ...]:
  """The phone set of config.data.features.phones (space separated, or a sequence)."""
  names = tuple(phones.split() if isinstance(phones, str) else phones)
  if len(set(names)) != len(names) or not names:
    raise ValueError(f'config.data.features.phones must list distinct phones, got {phones!r}.')
  return names


def num_channels(phones: Sequence[str]) -> int:
  """Channels of the features over this phone set: 3 (len(phones) + 1) + 6."""
  return 3 * (len(phones) + 1) + _EXTRA_CHANNELS


def read_lab(path: str | os.PathLike) -> list[Segment]:
  """The phones of a .lab file (header line, then `start end phone vowel stress ...` rows).

  Raises:
    ValueError: naming the file and line, for a malformed row or none at all.
  """
  segments = []
  lines = pathlib.Path(path).read_text(encoding='utf-8').splitlines()
  for number, line in enumerate(lines[1:], start=2):
    if not line.strip():
      continue
    fields = line.split('\t')
    try:
      segments.append(Segment(float(fields[0]), float(fields[1]), fields[2], int(fields[3]),
                              int(fields[4])))
    except (IndexError, ValueError):
      raise ValueError(f'{path}:{number}: not a `start end phone vowel stress` row: '
                       f'{line!r}.') from None
  if not segments:
    raise ValueError(f'{path}: holds no phone.')
  return segments


def label_frames(segments: Sequence[Segment], num_frames: int, hop_length: int,
                 sample_rate: int, phones: Sequence[str]) -> np.ndarray:
  """float32 [num_frames, num_channels(phones) - 2]: every channel but log-F0 and voicing.

  Frame k is the phone holding its centre, (k + 1/2) hop_length / sample_rate seconds (the
  last phone past the labels' end).
  """
  index = {name: i for i, name in enumerate(phones)}
  unknown = len(phones)
  ids = np.array([index.get(s.phone, unknown) for s in segments])
  pause = index.get(PAUSE, unknown)
  starts = np.array([s.start for s in segments])
  ends = np.array([s.end for s in segments])
  centres = (np.arange(num_frames) + 0.5) * hop_length / sample_rate
  current = np.minimum(np.searchsorted(ends, centres, side='right'), len(segments) - 1)
  width = len(phones) + 1
  frames = np.zeros((num_frames, num_channels(phones) - 2), np.float32)
  rows = np.arange(num_frames)
  neighbours = np.concatenate([[pause], ids, [pause]])
  for block, phone_ids in enumerate((neighbours[current], ids[current], neighbours[current + 2])):
    frames[rows, block * width + phone_ids] = 1.0
  durations = ends[current] - starts[current]
  extra = 3 * width
  frames[:, extra] = np.clip((centres - starts[current]) / np.maximum(durations, 1e-9), 0, 1)
  frames[:, extra + 1] = durations
  frames[:, extra + 2] = np.array([s.vowel for s in segments])[current]
  frames[:, extra + 3] = np.array([s.stress for s in segments])[current]
  return frames


def f0_frames(waveform: np.ndarray, num_frames: int, hop_length: int,
              sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
  """(Hz float32 [num_frames], voiced bool [num_frames]) by pYIN, frame k at its centre."""
  import librosa  # pylint: disable=import-outside-toplevel; heavy, only to make features.
  # pYIN centres frame j at sample j * hop: drop half a hop so that it sits at frame k's centre.
  f0, voiced, _ = librosa.pyin(
      waveform[hop_length // 2:], fmin=F0_MIN, fmax=F0_MAX, sr=sample_rate,
      frame_length=F0_FRAME_LENGTH, hop_length=hop_length, center=True)
  f0 = np.pad(np.nan_to_num(f0[:num_frames]), (0, max(0, num_frames - len(f0))), mode='edge')
  voiced = np.pad(voiced[:num_frames], (0, max(0, num_frames - len(voiced))), mode='edge')
  return f0.astype(np.float32), voiced & (f0 > 0)


def combine(labels: np.ndarray, f0: np.ndarray, voiced: np.ndarray,
            pause_frames: np.ndarray) -> np.ndarray:
  """float32 [frames, C]: label_frames' channels + log-F0 (interpolated through frames that are
  unvoiced or pauses; log F0_MIN where nothing is voiced) + the voiced flag."""
  voiced = voiced & ~pause_frames
  log_f0 = np.full(len(labels), np.log(F0_MIN), np.float32)
  if voiced.any():
    where = np.flatnonzero(voiced)
    log_f0 = np.interp(np.arange(len(labels)), where, np.log(f0[where])).astype(np.float32)
  return np.concatenate([labels, log_f0[:, None], voiced[:, None].astype(np.float32)], axis=1)


def utterance_features(waveform: np.ndarray, segments: Sequence[Segment], hop_length: int,
                       sample_rate: int, phones: Sequence[str]) -> np.ndarray:
  """float32 [ceil(len(waveform) / hop_length), num_channels(phones)]: the module's features."""
  num_frames = -(-len(waveform) // hop_length)
  labels = label_frames(segments, num_frames, hop_length, sample_rate, phones)
  f0, voiced = f0_frames(waveform, num_frames, hop_length, sample_rate)
  return combine(labels, f0, voiced, pause_frames(labels, phones))


def pause_frames(frames: np.ndarray, phones: Sequence[str]) -> np.ndarray:
  """bool [frames]: where the current phone is the pause, of float32 [frames, >= 2 (P + 1)]
  features or label_frames (not normalised)."""
  pause = phones.index(PAUSE) if PAUSE in phones else len(phones)
  return frames[:, len(phones) + 1 + pause] > 0.5


def f0_of_features(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(F0 in Hz float32 [frames], interpolated through unvoiced frames; voiced bool [frames])
  of float32 [frames, C] features as `utterance_features` makes them (not normalised)."""
  return np.exp(frames[:, -2]), frames[:, -1] > 0.5


def lab_path(audio_path: str | os.PathLike) -> pathlib.Path:
  """The .lab file of an audio file: the same path with the suffix .lab."""
  return pathlib.Path(audio_path).with_suffix('.lab')


def write_features(audio_path: pathlib.Path, out_path: pathlib.Path, sample_rate: int,
                   hop_length: int, phones: Sequence[str]) -> None:
  """Writes audio_path's features (from its .lab and audio) to out_path (.npy), atomically.

  Raises:
    ValueError: for a malformed .lab; audio.AudioFileError for unusable audio.
  """
  from wavenet_jax import audio as audio_lib  # pylint: disable=import-outside-toplevel
  waveform = audio_lib.load_audio(audio_path, sample_rate)
  frames = utterance_features(waveform, read_lab(lab_path(audio_path)), hop_length,
                              sample_rate, phones)
  out_path.parent.mkdir(parents=True, exist_ok=True)
  partial = out_path.with_name(out_path.name + f'.{os.getpid()}.partial.npy')
  np.save(partial, frames)
  partial.replace(out_path)


def write_folder(wav_dir: str, out_dir: str, *, sample_rate: int, hop_length: int,
                 phones: Sequence[str]) -> tuple[int, dict[str, str]]:
  """Writes `<stem>.npy` under out_dir (mirroring wav_dir) for each audio file with a .lab.

  Returns:
    (files written, {relative path: why} of the audio files skipped).

  Raises:
    ValueError: naming --wav_dir if it is not a folder.
  """
  from wavenet_jax import audio as audio_lib  # pylint: disable=import-outside-toplevel
  root = pathlib.Path(wav_dir)
  if not root.is_dir():
    raise ValueError(f'--wav_dir={wav_dir}: not a folder.')
  written, skipped = 0, {}
  for path in sorted(root.rglob('*')):
    if path.suffix.lower() not in AUDIO_SUFFIXES:
      continue
    relative = path.relative_to(root)
    if not lab_path(path).is_file():
      skipped[str(relative)] = f'no {lab_path(relative)}'
      continue
    try:
      write_features(path, pathlib.Path(out_dir) / relative.with_suffix('.npy'), sample_rate,
                     hop_length, phones)
      written += 1
    except (ValueError, audio_lib.AudioFileError) as error:
      skipped[str(relative)] = str(error)
  return written, skipped
