"""Tests of wavenet_jax/cli.py: the one way every command-line tool fails and keeps quiet."""
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from wavenet_jax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_TOOL = """
    from absl import flags
    from ml_collections import config_flags
    from wavenet_jax import cli

    _CONFIG = config_flags.DEFINE_config_file('config', None, 'Config.', lock_config=True)
    _MODE = flags.DEFINE_enum('mode', 'ok', ['ok', 'value', 'type'], 'What main does.')

    @cli.exit_on_error(ValueError)
    def main(argv):
      del argv
      if _MODE.value == 'value':
        raise ValueError('the input is wrong:\\n  see the docs')
      if _MODE.value == 'type':
        raise TypeError('a bug')
      print('batch', _CONFIG.value.train.batch_size)

    if __name__ == '__main__':
      cli.run(main)
    """


def _run_tool(tmp_path, *args):
  tool = tmp_path / 'tool.py'
  tool.write_text(textwrap.dedent(_TOOL))
  return subprocess.run([sys.executable, str(tool),
                         f'--config={os.path.join(REPO, "experiments", "tiny.py")}', *args],
                        cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                        text=True, timeout=120)


@pytest.mark.slow
def test_a_listed_error_is_one_line_with_status_1(tmp_path):
  result = _run_tool(tmp_path, '--mode=value')
  assert result.returncode == 1
  assert result.stderr.strip() == 'tool.py: error: the input is wrong: see the docs'


@pytest.mark.slow
def test_an_unlisted_error_is_a_traceback(tmp_path):
  result = _run_tool(tmp_path, '--mode=type')
  assert result.returncode == 1
  assert 'Traceback' in result.stderr and 'TypeError: a bug' in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize('args, message', [
    (['--config.train.batch_sizee=3'],
     'tool.py: error: --config.train.batch_sizee=3: no such config key \'batch_sizee\' '
     '(Did you mean "batch_size" instead of "batch_sizee"?)'),
    (['--no_such_flag=1'], 'tool.py: error: Unknown command line flag \'no_such_flag\''),
    (['--mode=loud'], 'tool.py: error: flag --mode=loud: value should be one of <ok|value|type>'),
    (['positional'], None),
])
def test_bad_flags_are_one_line_errors(tmp_path, args, message):
  result = _run_tool(tmp_path, *args)
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  if message is None:  # absl's usage error: says what was unexpected.
    assert 'unexpected arguments: positional' in result.stderr
  else:
    assert result.stderr.strip() == message


@pytest.mark.slow
def test_overrides_reach_main(tmp_path):
  result = _run_tool(tmp_path, '--config.train.batch_size=6')
  assert result.returncode == 0 and result.stdout.strip() == 'batch 6'


def _record(level, pathname, message='message', lineno=1):
  return logging.LogRecord('absl', level, pathname, lineno, message, None, None)


def test_library_info_lines_are_hidden_but_not_their_warnings():
  library = f'{os.sep}site-packages{os.sep}orbax{os.sep}checkpoint{os.sep}x.py'
  quiet = cli._QuietFilter()
  assert not quiet.filter(_record(logging.INFO, library))
  assert quiet.filter(_record(logging.WARNING, library))
  assert quiet.filter(_record(logging.INFO, os.path.join(REPO, 'train.py')))
  assert quiet.filter(_record(logging.INFO, os.path.join(REPO, 'wavenet_jax', 'trainer.py')))


@pytest.mark.parametrize('message', [
    "Using custom data configuration: AudioFolderConfig(name='speech_16000hz_0096fd01fd72')",
    "Unable to initialize backend 'tpu': INTERNAL: Failed to open libtpu.so",
    'CheckpointManagerOptions.read_only=True, setting save_interval_steps=0.',
    'Given directory is read only=/runs/tiny/checkpoints',
    'Matplotlib is building the font cache; this may take a moment.'])
def test_library_notices_are_hidden(message):
  assert not cli._QuietFilter().filter(_record(logging.WARNING, '/site-packages/x.py', message))


def test_a_repeated_warning_shows_once_and_errors_always():
  quiet = cli._QuietFilter()
  trainer = os.path.join(REPO, 'wavenet_jax', 'trainer.py')
  assert quiet.filter(_record(logging.WARNING, trainer, 'clipped 3 samples'))
  assert not quiet.filter(_record(logging.WARNING, trainer, 'clipped 3 samples'))
  assert quiet.filter(_record(logging.WARNING, trainer, 'clipped 4 samples'))
  assert quiet.filter(_record(logging.ERROR, trainer, 'failed'))
  assert quiet.filter(_record(logging.ERROR, trainer, 'failed'))


def _log_lines(tmp_path, *flags):
  tool = tmp_path / 'logs.py'
  tool.write_text(textwrap.dedent("""
      from absl import logging
      from wavenet_jax import cli

      @cli.exit_on_error()
      def main(argv):
        for _ in range(2):
          logging.warning('Using custom data configuration: AudioFolderConfig()')
          logging.warning('our warning')
        logging.info('our line')

      if __name__ == '__main__':
        cli.run(main)
  """))
  result = subprocess.run([sys.executable, str(tool), '--logtostderr', *flags], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 0, result.stderr
  return [line.split('] ', 1)[-1] for line in result.stderr.splitlines() if '] ' in line]


@pytest.mark.slow
def test_verbosity_brings_the_noise_back(tmp_path):
  assert _log_lines(tmp_path) == ['our warning', 'our line']
  assert _log_lines(tmp_path, '--verbosity=1') == [
      'Using custom data configuration: AudioFolderConfig()', 'our warning'] * 2 + ['our line']


@pytest.mark.slow
@pytest.mark.parametrize('script,module', [
    ('experiments/benchmarks/sampling.py', 'experiments.benchmarks.sampling'),
    ('experiments/tools/report.py', 'experiments.tools.report')])
def test_a_script_run_by_path_names_its_module(script, module):
  result = subprocess.run([sys.executable, script], cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=60)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines() == [
      f'{os.path.basename(script)}: error: run it from the repository root as a module: '
      f'python -m {module}']
