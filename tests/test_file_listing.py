"""file_listing.scan_folder: metadata.csv rows that are malformed or duplicated, odd file names."""
import os

import pytest

from wavenet_jax import file_listing


def _folder(root, names, metadata=None):
  """A folder of (empty: nothing is decoded) files and an optional metadata.csv."""
  for name in names:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(b'')
  if metadata is not None:
    (root / 'metadata.csv').write_text(metadata, encoding='utf-8')
  return str(root)


def _speakers_and_texts(listing):
  return {entry.file: (entry.speaker, entry.text) for entry in listing.entries}


def test_rows_after_a_stray_quote_are_read_and_the_bad_rows_reported(tmp_path):
  wav_dir = _folder(tmp_path, ['a.wav', 'b.wav', 'c.wav', 'd.wav', 'e.wav'],
                    'file,speaker,text\n'
                    'a.wav,ann,"never closed\n'  # Its quote pairs with d.wav's: "',' expected".
                    'b.wav,bob,fine\n'
                    'c.wav,cid,fine\n'
                    'd.wav,dan,"quoted"\n'
                    'e.wav,eve,"open to the end\n')
  listing = file_listing.scan_folder(wav_dir)
  assert _speakers_and_texts(listing) == {
      'a.wav': (tmp_path.name, ''), 'b.wav': ('bob', 'fine'), 'c.wav': ('cid', 'fine'),
      'd.wav': ('dan', 'quoted'), 'e.wav': (tmp_path.name, '')}
  assert len(listing.problems) == 2
  assert listing.problems[0].startswith('line 2: a quote is not closed, or text follows a '
                                        'closing quote')
  assert listing.problems[1] == 'line 6: a quote is opened and never closed: the row is not used'
  assert listing.unlisted == 2


def test_a_quoted_field_over_several_lines_is_reported_not_swallowing_rows(tmp_path):
  wav_dir = _folder(tmp_path, ['a.wav', 'b.wav', 'c.wav', 'd.wav'],
                    'file,speaker,text\n'
                    'a.wav,ann,"stray\n'
                    'b.wav,bob,fine\n'
                    'c.wav,cid,"\n'  # Closes line 2's quote: one valid CSV row, lines 2-4.
                    'd.wav,dan,fine\n')
  listing = file_listing.scan_folder(wav_dir)
  assert _speakers_and_texts(listing) == {
      'a.wav': (tmp_path.name, ''), 'b.wav': ('bob', 'fine'), 'c.wav': (tmp_path.name, ''),
      'd.wav': ('dan', 'fine')}
  assert listing.problems == (
      'line 2: a quoted field runs on over lines 2-4 (is a quote on line 2 not closed?): the '
      'row is not used',
      'line 4: a quote is opened and never closed: the row is not used')


def test_duplicate_rows_are_reported_and_the_last_is_used(tmp_path):
  (tmp_path / 'wavs').mkdir()
  wav_dir = _folder(tmp_path / 'wavs', ['a.wav', 'b.wav'],
                    'file,speaker\n'
                    'a.wav,first\n'
                    'b.wav,bob\n'
                    'wavs/a.wav,second\n'  # The same file, relative to wav_dir's parent.
                    'a.wav,third\n')
  listing = file_listing.scan_folder(wav_dir)
  assert _speakers_and_texts(listing)['a.wav'] == ('third', '')
  assert listing.problems == ("line 4: 'wavs/a.wav' is the file of line 2 too: line 4 is used",
                              "line 5: 'a.wav' is the file of line 4 too: line 5 is used")


def test_other_malformed_rows_are_reported_with_their_line(tmp_path):
  wav_dir = _folder(tmp_path, ['a.wav', 'b.wav', 'notes.txt'],
                    'file , speaker ,text\n'  # Spaces around the column names.
                    'a.wav,ann,hello, world\n'
                    ',bob,no file\n'
                    'notes.txt,bob,not audio\n'
                    'b.wav,bob\n'  # No text: fine.
                    ',,\n'  # Empty (spreadsheets export some): skipped silently.
                    '\n')
  listing = file_listing.scan_folder(wav_dir)
  assert _speakers_and_texts(listing) == {'a.wav': (tmp_path.name, ''), 'b.wav': ('bob', '')}
  assert listing.problems == (
      'line 2: 4 fields, the header has 3 (is a text with a comma not in quotes?): the row is '
      'not used',
      'line 3: no file name: the row is not used',
      "line 4: 'notes.txt' is not a .wav/.flac/.ogg file: the row is not used")
  assert listing.ignored == ('notes.txt',)


def test_an_audio_files_lab_and_npy_are_not_listed_as_ignored(tmp_path):
  wav_dir = _folder(tmp_path, ['spk/a.wav', 'spk/a.lab', 'spk/a.npy', 'spk/b.lab', 'notes.txt'])
  listing = file_listing.scan_folder(wav_dir)
  assert listing.ignored == ('notes.txt', 'spk/b.lab')  # b.lab has no audio file beside it.


def test_a_metadata_csv_with_a_byte_order_mark_is_read(tmp_path):
  wav_dir = _folder(tmp_path, ['a.wav'])
  (tmp_path / 'metadata.csv').write_text('file,speaker\na.wav,ann\n', encoding='utf-8-sig')
  listing = file_listing.scan_folder(wav_dir)
  assert _speakers_and_texts(listing) == {'a.wav': ('ann', '')}
  assert not listing.problems and not listing.unlisted


def test_files_whose_name_is_not_utf8_are_skipped_and_shown_as_bytes(tmp_path):
  try:  # Linux file systems take any bytes; macOS's refuse names that are not UTF-8.
    for name in (b'bad\xff.wav', b'notes\xfe.txt'):
      with open(os.path.join(os.fsencode(tmp_path), name), 'wb'):
        pass
  except OSError:
    pytest.skip('this file system refuses names that are not UTF-8')
  with pytest.raises(ValueError, match=r"^--wav_dir=.* holds no .wav/.flac/.ogg file whose name "
                                       r"is valid UTF-8 \(b'bad\\xff.wav'\)"):
    file_listing.scan_folder(str(tmp_path), setting='--wav_dir')
  _folder(tmp_path, ['good.wav'])
  listing = file_listing.scan_folder(str(tmp_path))
  assert [entry.file for entry in listing.entries] == ['good.wav']
  assert listing.undecodable == ("b'bad\\xff.wav'",)
  assert listing.ignored == ("b'notes\\xfe.txt'",)
  assert listing.skipped == {"b'bad\\xff.wav'": file_listing.UNDECODABLE_NAME_REASON}


def test_errors_name_the_setting(tmp_path):
  with pytest.raises(ValueError, match="^--wav_dir='.*nowhere' is not a folder"):
    file_listing.scan_folder(str(tmp_path / 'nowhere'), setting='--wav_dir')
  with pytest.raises(ValueError, match='^config.data.wav_dir=.* holds no .wav/.flac/.ogg file.$'):
    file_listing.scan_folder(str(tmp_path))


def test_rows_naming_a_file_outside_the_folder_say_so(tmp_path):
  (tmp_path / 'wavs').mkdir()
  (tmp_path / 'secret.wav').write_bytes(b'')
  wav_dir = _folder(tmp_path / 'wavs', ['a.wav'],
                    'file,speaker\n'
                    'a.wav,alice\n'
                    '../secret.wav,eve\n'  # Exists, but outside wav_dir.
                    'secret.wav,eve\n'  # Relative to wav_dir's parent: outside too.
                    'gone.wav,bob\n')
  listing = file_listing.scan_folder(wav_dir)
  assert listing.skipped == {'../secret.wav': file_listing.OUTSIDE_REASON,
                             'secret.wav': file_listing.OUTSIDE_REASON,
                             'gone.wav': file_listing.MISSING_REASON}
  assert 'outside the folder' in file_listing.OUTSIDE_REASON
  assert [entry.file for entry in listing.entries] == ['a.wav']
