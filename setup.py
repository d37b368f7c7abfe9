"""wavenet-jax: WaveNet (van den Oord et al., 2016) in JAX/Flax."""
import pathlib

import setuptools

_ROOT = pathlib.Path(__file__).parent


def _requirements() -> list[str]:
  lines = (_ROOT / 'requirements.txt').read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith('#')]


setuptools.setup(
    name='wavenet-jax',
    version='0.1.0',
    description='WaveNet: a generative model for raw audio, in JAX/Flax.',
    long_description=(_ROOT / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    packages=setuptools.find_packages(include=['wavenet_jax', 'wavenet_jax.*']),
    package_data={'wavenet_jax': ['data/**/*']},
    include_package_data=True,
    python_requires='>=3.11',
    install_requires=_requirements(),
    extras_require={'test': ['pytest==9.2.0']},
)
