"""Listing a folder of audio files with their speakers and texts (nothing decoded, no TFDS).

The folder (`wav_dir`) is searched recursively for .wav/.flac/.ogg files. An
optional `metadata.csv` in it has a `file` column and optional `speaker` and
`text` columns. A row's `file` is resolved relative to wav_dir, or else relative
to wav_dir's parent (for corpora whose listed paths start with the corpus folder
name). Audio files with no metadata row take the name of their folder as speaker
(wav_dir's own name for files at the top) and an empty text.

The dataset builder (`datasets.audio_folder`) prepares such a listing for
training; `evaluation` scores one with a trained model.
"""
import csv
import dataclasses
import pathlib

AUDIO_SUFFIXES = ('.wav', '.flac', '.ogg')
METADATA_FILE = 'metadata.csv'


@dataclasses.dataclass(frozen=True)
class AudioFileEntry:
  """One audio file to prepare: path relative to wav_dir, speaker, text."""
  file: str
  speaker: str
  text: str


@dataclasses.dataclass(frozen=True)
class FolderListing:
  """What a scan of wav_dir found, before any audio is decoded."""
  entries: tuple[AudioFileEntry, ...]
  missing: tuple[str, ...]  # metadata rows whose file does not exist
  ignored: tuple[str, ...]  # files that are neither audio nor metadata.csv
  unlisted: int  # audio files with no metadata row (speaker from folder name)


def _read_metadata(wav_dir: pathlib.Path) -> dict[str, dict[str, str]]:
  """metadata.csv rows keyed by their `file` value ({} when there is no metadata.csv)."""
  path = wav_dir / METADATA_FILE
  if not path.exists():
    return {}
  try:
    with path.open(newline='', encoding='utf-8') as f:
      reader = csv.DictReader(f)
      if not reader.fieldnames or 'file' not in reader.fieldnames:
        raise ValueError(f'{path}: needs a header with a "file" column (and optional '
                         f'"speaker", "text"); found {reader.fieldnames}.')
      return {row['file']: row for row in reader if row.get('file')}
  except (UnicodeDecodeError, csv.Error) as error:
    raise ValueError(f'{path}: not a UTF-8 CSV file ({error}).') from error


def _resolve(wav_dir: pathlib.Path, listed: str) -> pathlib.Path | None:
  for base in (wav_dir, wav_dir.parent):
    candidate = (base / listed).resolve()
    if candidate.is_file() and candidate.is_relative_to(wav_dir):
      return candidate
  return None


def scan_folder(wav_dir: str) -> FolderListing:
  """Lists wav_dir's audio files with speaker and text (decodes nothing).

  Raises:
    ValueError: if wav_dir is not a folder, holds no audio file, or its
      metadata.csv has no `file` column.
  """
  root = pathlib.Path(wav_dir).expanduser().resolve()
  if not root.is_dir():
    raise ValueError(f'config.data.wav_dir={wav_dir!r} is not a folder.')
  audio_files, ignored = [], []
  for path in sorted(p for p in root.rglob('*') if p.is_file()):
    if path.suffix.lower() in AUDIO_SUFFIXES:
      audio_files.append(path)
    elif path != root / METADATA_FILE:
      ignored.append(path.relative_to(root).as_posix())
  metadata = _read_metadata(root)
  rows_by_path, missing = {}, []
  for listed, row in metadata.items():
    resolved = _resolve(root, listed)
    if resolved is None:
      missing.append(listed)
    else:
      rows_by_path[resolved] = row
  entries = []
  for path in audio_files:
    row = rows_by_path.get(path)
    folder_speaker = path.parent.name if path.parent != root else root.name
    speaker = (row.get('speaker') or '').strip() if row else ''
    text = (row.get('text') or '') if row else ''
    entries.append(AudioFileEntry(path.relative_to(root).as_posix(), speaker or folder_speaker,
                                  text))
  if not entries:
    raise ValueError(f'config.data.wav_dir={wav_dir!r} holds no {"/".join(AUDIO_SUFFIXES)} file.')
  unlisted = sum(path not in rows_by_path for path in audio_files) if metadata else 0
  return FolderListing(tuple(entries), tuple(missing), tuple(ignored), unlisted)
