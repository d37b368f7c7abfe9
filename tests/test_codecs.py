"""Tests of wavenet_jax/codecs.py: the pre-emphasis filters and a codec that carries them."""
import jax.numpy as jnp
import numpy as np
import pytest

from wavenet_jax import codecs
from wavenet_jax import mulaw

PCM16 = codecs.PCM16_CLASSES


@pytest.mark.parametrize('coefficient', [0.0, 0.5, 0.97])
def test_deemphasis_inverts_preemphasis_across_chunk_boundaries(coefficient):
  signal = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 1700)).astype(np.float32)
  emphasised = codecs.preemphasize(signal, coefficient)
  np.testing.assert_allclose(emphasised[:, 1:], signal[:, 1:] - coefficient * signal[:, :-1],
                             atol=1e-6)
  np.testing.assert_allclose(codecs.deemphasize(emphasised, coefficient), signal, atol=1e-5)
  # Chunk by chunk, each given the previous chunk's last output (and input) sample.
  pieces, previous_in, previous_out = [], 0.0, np.zeros(2)
  for start, stop in ((0, 1), (1, 300), (300, 301), (301, 1000), (1000, 1700)):
    chunk = codecs.preemphasize(signal[:, start:stop], coefficient, previous_in)
    previous_in = signal[:, stop - 1]
    pieces.append(codecs.deemphasize(chunk, coefficient, previous_out))
    previous_out = pieces[-1][:, -1]
  np.testing.assert_allclose(np.concatenate(pieces, axis=1), signal, atol=1e-5)
  # The inverse filter: y[t] = x[t] + p y[t - 1] (a sample-by-sample reference).
  x = np.random.default_rng(1).standard_normal(600).astype(np.float32)
  expected, last = np.empty(600), 0.0
  for t in range(600):
    last = expected[t] = x[t] + coefficient * last
  np.testing.assert_allclose(codecs.deemphasize(x, coefficient), expected, rtol=1e-5,
                             atol=1e-5)


@pytest.mark.parametrize('kind, num_classes', [('mulaw', 256), ('pcm', PCM16)])
def test_without_preemphasis_a_codec_is_its_base_codec(kind, num_classes):
  """Bit for bit what the codec gave before it knew pre-emphasis, numpy and jax alike."""
  codec = codecs.Codec(kind, num_classes)
  audio = np.random.default_rng(0).uniform(-1, 1, (2, 500)).astype(np.float32)
  base_encode, base_decode = ((mulaw.encode, mulaw.decode) if kind == 'mulaw' else
                              (codecs.pcm_encode, codecs.pcm_decode))
  classes = codec.encode(audio, previous=0.7)  # No filter: `previous` is not read.
  np.testing.assert_array_equal(classes, base_encode(audio, num_classes - 1)
                                if kind == 'mulaw' else base_encode(audio, num_classes))
  np.testing.assert_array_equal(np.asarray(codec.encode(jnp.asarray(audio))), classes)
  decoded = codec.decode(classes)
  np.testing.assert_array_equal(decoded, codec.values(classes))
  np.testing.assert_array_equal(decoded, base_decode(classes, num_classes - 1)
                                if kind == 'mulaw' else base_decode(classes, num_classes))


def test_a_preemphasis_codec_round_trips_a_waveform_and_a_crop_from_inside_it():
  codec = codecs.Codec('pcm', PCM16, preemphasis=0.9)
  audio = (np.random.default_rng(1).uniform(-0.4, 0.4, 3000)).astype(np.float32)
  classes = codec.encode(audio)
  # The classes are the 16-bit samples of the filtered waveform; decode inverts the filter.
  np.testing.assert_array_equal(classes, codecs.pcm_encode(codecs.preemphasize(audio, 0.9)))
  np.testing.assert_allclose(codec.decode(classes), audio, atol=1e-4)
  # A crop starting mid-file, with the sample before it as the filter's state, encodes as
  # the whole file's classes there.
  np.testing.assert_array_equal(codec.encode(audio[1000:1500], previous=audio[999]),
                                classes[1000:1500])


def test_the_decoder_of_consecutive_chunks_equals_decoding_the_whole():
  codec = codecs.Codec('mulaw', 256, preemphasis=0.97)
  classes = np.random.default_rng(2).integers(0, 256, (3, 700)).astype(np.int32)
  whole = codec.decode(classes)
  decoder = codec.decoder()
  chunks = [decoder(classes[:, start:stop])
            for start, stop in ((0, 1), (1, 257), (257, 258), (258, 700))]
  np.testing.assert_allclose(np.concatenate(chunks, axis=1), whole, rtol=1e-6, atol=1e-6)
  # It is the inverse filter of the classes' values, each row on its own.
  np.testing.assert_allclose(whole, codecs.deemphasize(mulaw.decode(classes), 0.97),
                             rtol=1e-6, atol=1e-6)
  assert not np.allclose(whole, codec.values(classes))


@pytest.mark.parametrize('preemphasis', [-0.1, 1.0, float('nan')])
def test_a_preemphasis_outside_0_to_1_is_refused(preemphasis):
  with pytest.raises(ValueError, match=r'preemphasis must be in \[0, 1\)'):
    codecs.Codec('mulaw', 256, preemphasis=preemphasis)
