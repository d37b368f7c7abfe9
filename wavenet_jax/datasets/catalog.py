"""TFDS catalog audio datasets usable by name (config.data.name).

Each entry says where the waveform and the global-conditioning label are in an
example, the stored sample rate, and the splits to read. Datasets without a
validation split hold out the last validation_fraction of 'train' (rounded to a
whole percent, TFDS split slicing). Audio at another rate than
config.data.sample_rate is resampled with soxr when read.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
  """How to read one TFDS catalog dataset.

  Attributes:
    tfds_name: the TFDS name, with builder config ('vctk/mic1').
    audio_key: feature holding the waveform (int16 or float32 [time]).
    speaker_key: '/'-separated path of the ClassLabel used as global
      conditioning, or None (one speaker, named after the dataset).
    sample_rate: rate of the stored audio in Hz.
    validation_split: the TFDS validation split, or None to hold out a slice of
      'train'.
  """
  tfds_name: str
  audio_key: str
  speaker_key: str | None
  sample_rate: int
  validation_split: str | None


CATALOG = {
    'ljspeech': CatalogEntry('ljspeech', 'speech', None, 22050, None),
    'vctk': CatalogEntry('vctk/mic1', 'speech', 'speaker', 48000, None),
    # Global conditioning on the instrument family (11 classes: bass, brass, ...).
    'nsynth': CatalogEntry('nsynth/full', 'audio', 'instrument/family', 16000, 'valid'),
    'speech_commands': CatalogEntry('speech_commands', 'audio', None, 16000, 'validation'),
}
