"""Listing a folder of audio files with their speakers and texts (nothing decoded, no TFDS).

The folder (`wav_dir`) is searched recursively for .wav/.flac/.ogg files. An
optional `metadata.csv` in it has a `file` column and optional `speaker` and
`text` columns. A row's `file` is resolved relative to wav_dir, or else relative
to wav_dir's parent (for corpora whose listed paths start with the corpus folder
name). Audio files with no metadata row take the name of their folder as speaker
(wav_dir's own name for files at the top) and an empty text.

Nothing is dropped silently: an audio file whose name is not valid UTF-8 (bytes
that Python holds surrogate-escaped, which soundfile, TFDS's text features and
UTF-8 output cannot take) is skipped and shown as its bytes (b'bad\\xff.wav');
metadata rows naming no existing file are `missing`, those naming a file outside
wav_dir (`../x.wav`, a link out of it) `outside`; malformed or duplicate
metadata rows are `problems`, each with its line number (see `_read_metadata`).
A metadata.csv saved with a UTF-8 byte order mark (spreadsheet exports) is read
as any other.

The dataset builder (`datasets.audio_folder`) prepares such a listing for
training; `evaluation` scores one with a trained model.
"""
from collections.abc import Iterator, Mapping
import csv
import dataclasses
import os
import pathlib

AUDIO_SUFFIXES = ('.wav', '.flac', '.ogg')
METADATA_FILE = 'metadata.csv'
# An audio file's companions (its features: docs/tts.md), not listed as ignored beside it.
COMPANION_SUFFIXES = ('.lab', '.npy')
MISSING_REASON = f'{METADATA_FILE} row: the file does not exist'
OUTSIDE_REASON = f'{METADATA_FILE} row: the file is outside the folder'
UNDECODABLE_NAME_REASON = 'the file name is not valid UTF-8: rename the file'


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
  # Files that are neither audio, an audio file's companion nor metadata.csv (as shown_name).
  ignored: tuple[str, ...]
  unlisted: int  # audio files with no metadata row (speaker from folder name)
  undecodable: tuple[str, ...]  # audio files whose name is not UTF-8 (as shown_name)
  problems: tuple[str, ...]  # 'line N: ...' of metadata rows not used, or overridden
  outside: tuple[str, ...] = ()  # metadata rows whose file exists outside wav_dir

  @property
  def skipped(self) -> dict[str, str]:
    """The files this listing already skips (undecodable names, missing or outside rows) ->
    reason."""
    return {**{name: UNDECODABLE_NAME_REASON for name in self.undecodable},
            **{listed: MISSING_REASON for listed in self.missing},
            **{listed: OUTSIDE_REASON for listed in self.outside}}


def shown_name(relative: str) -> str:
  """The name itself if it is valid UTF-8, else the repr of its bytes (printable anywhere)."""
  try:
    relative.encode('utf-8')
  except UnicodeEncodeError:
    return repr(os.fsencode(relative))
  return relative


def skipped_line(wav_dir: str, skipped: Mapping[str, str]) -> str | None:
  """One line listing every skipped file and why (None when nothing was skipped)."""
  if not skipped:
    return None
  listed = '; '.join(f'{path} ({reason})' for path, reason in sorted(skipped.items()))
  return f'Skipped {len(skipped)} file(s) of {wav_dir}: {listed}'


def problems_line(wav_dir: str, problems: tuple[str, ...] | list[str]) -> str | None:
  """One line listing every metadata.csv problem (None when there is none)."""
  if not problems:
    return None
  return (f'{len(problems)} problem(s) in {pathlib.Path(wav_dir) / METADATA_FILE}: '
          + '; '.join(problems))


def _csv_rows(lines: list[str]) -> Iterator[tuple[int, list[str] | str]]:
  """(line number of its first line, fields or why it is not used) of each CSV row.

  csv's strict mode reports a quote that is never closed (instead of reading the rest of
  the file into one field) and text after a closing quote. A row over several lines (a
  quote left open until a later stray quote) is refused too: texts are one line. After a
  refused row parsing starts again on the line after its first, so the rows after one bad
  quote are still read.
  """
  start = 0  # Index of the line the reader starts on.
  while start < len(lines):
    reader = csv.reader(lines[start:], strict=True)
    consumed = start  # Lines consumed up to the end of the last row read.
    try:
      for fields in reader:
        first, consumed = consumed + 1, start + reader.line_num
        if consumed > first:
          yield first, (f'a quoted field runs on over lines {first}-{consumed} (is a quote '
                        f'on line {first} not closed?)')
          break
        yield first, fields
      else:
        return
    except csv.Error as error:
      first = consumed + 1
      if 'unexpected end of data' in str(error):
        yield first, 'a quote is opened and never closed'
      elif 'expected after' in str(error):
        yield first, f'a quote is not closed, or text follows a closing quote (csv: {error})'
      else:
        yield first, f'not valid CSV ({error})'
    start = first


def _read_metadata(
    path: pathlib.Path) -> tuple[list[tuple[int, dict[str, str]]], list[tuple[int, str]]]:
  """metadata.csv's usable rows as (line number, {column: value}), and (line number, problem).

  A row is not used, and reported with its line number, when csv cannot parse it or it
  spans several lines (see `_csv_rows`), when it has more non-empty fields than the header
  has columns (a text with a comma not in quotes) or when its `file` is empty. Rows of empty
  fields only (spreadsheet exports end with some) are skipped silently.

  Raises:
    ValueError: naming the file, if it cannot be read, is not UTF-8 or has no header with
      a `file` column.
  """
  try:
    with path.open(newline='', encoding='utf-8-sig') as f:
      lines = f.readlines()
  except UnicodeDecodeError as error:
    raise ValueError(f'{path}: not a UTF-8 CSV file ({error}).') from error
  except OSError as error:
    raise ValueError(f'{path}: cannot be read ({error}).') from error
  parsed = _csv_rows(lines)
  _, header = next(parsed, (1, []))
  if isinstance(header, str):
    raise ValueError(f'{path}: line 1, the header: {header}.')
  header = [name.strip() for name in header]
  if 'file' not in header:
    raise ValueError(f'{path}: needs a header with a "file" column (and optional "speaker", '
                     f'"text"); found {header}.')
  rows, problems = [], []
  for line, fields in parsed:
    if isinstance(fields, str):
      problems.append((line, f'{fields}: the row is not used'))
    elif not any(field.strip() for field in fields):
      continue
    elif any(field.strip() for field in fields[len(header):]):
      problems.append((line, f'{len(fields)} fields, the header has {len(header)} (is a text '
                             'with a comma not in quotes?): the row is not used'))
    elif not (row := dict(zip(header, fields))).get('file'):
      problems.append((line, 'no file name: the row is not used'))
    else:
      rows.append((line, row))
  return rows, problems


def _resolve(wav_dir: pathlib.Path, listed: str) -> pathlib.Path | str:
  """The audio file a metadata row names, else why it is not used (MISSING/OUTSIDE_REASON)."""
  reason = MISSING_REASON
  for base in (wav_dir, wav_dir.parent):
    candidate = (base / listed).resolve()
    if candidate.is_file():
      if candidate.is_relative_to(wav_dir):
        return candidate
      reason = OUTSIDE_REASON
  return reason


def scan_folder(wav_dir: str, setting: str = 'config.data.wav_dir') -> FolderListing:
  """Lists wav_dir's audio files with speaker and text (decodes nothing).

  Args:
    wav_dir: the folder.
    setting: the flag or config key the user set wav_dir with, named in errors.

  Raises:
    ValueError: naming `setting` if wav_dir is not a folder or holds no audio file with a
      UTF-8 name; naming metadata.csv if it cannot be read or has no `file` column.
  """
  root = pathlib.Path(wav_dir).expanduser().resolve()
  if not root.is_dir():
    raise ValueError(f'{setting}={wav_dir!r} is not a folder.')
  audio_files, undecodable, ignored = [], [], []
  files = sorted(p for p in root.rglob('*') if p.is_file())
  audio_stems = {p.with_suffix('') for p in files if p.suffix.lower() in AUDIO_SUFFIXES}
  for path in files:
    relative = path.relative_to(root).as_posix()
    if path.suffix.lower() not in AUDIO_SUFFIXES:
      if path != root / METADATA_FILE and not (path.suffix in COMPANION_SUFFIXES
                                               and path.with_suffix('') in audio_stems):
        ignored.append(shown_name(relative))
    elif shown_name(relative) != relative:
      undecodable.append(shown_name(relative))
    else:
      audio_files.append(path)
  has_metadata = (root / METADATA_FILE).exists()
  rows, problems = _read_metadata(root / METADATA_FILE) if has_metadata else ([], [])
  rows_by_path, line_of, not_found = {}, {}, {MISSING_REASON: [], OUTSIDE_REASON: []}
  for line, row in rows:
    resolved = _resolve(root, row['file'])
    if isinstance(resolved, str):
      if row['file'] not in not_found[resolved]:
        not_found[resolved].append(row['file'])
    elif resolved.suffix.lower() not in AUDIO_SUFFIXES:
      problems.append((line, f'{row["file"]!r} is not a {"/".join(AUDIO_SUFFIXES)} file: the '
                             'row is not used'))
    else:
      if resolved in rows_by_path:
        problems.append((line, f'{row["file"]!r} is the file of line {line_of[resolved]} too: '
                               f'line {line} is used'))
      rows_by_path[resolved], line_of[resolved] = row, line
  entries = []
  for path in audio_files:
    row = rows_by_path.get(path)
    folder_speaker = path.parent.name if path.parent != root else root.name
    speaker = (row.get('speaker') or '').strip() if row else ''
    text = (row.get('text') or '') if row else ''
    entries.append(AudioFileEntry(path.relative_to(root).as_posix(), speaker or folder_speaker,
                                  text))
  if not entries:
    raise ValueError(f'{setting}={wav_dir!r} holds no {"/".join(AUDIO_SUFFIXES)} file'
                     + (f' whose name is valid UTF-8 ({", ".join(undecodable)})'
                        if undecodable else '') + '.')
  unlisted = sum(path not in rows_by_path for path in audio_files) if has_metadata else 0
  return FolderListing(
      entries=tuple(entries), missing=tuple(not_found[MISSING_REASON]),
      outside=tuple(not_found[OUTSIDE_REASON]), ignored=tuple(ignored), unlisted=unlisted,
      undecodable=tuple(undecodable),
      problems=tuple(f'line {line}: {problem}' for line, problem in sorted(problems)))
