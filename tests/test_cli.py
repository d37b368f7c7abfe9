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


def test_library_info_lines_are_hidden_but_not_their_warnings():
  library = f'{os.sep}site-packages{os.sep}orbax{os.sep}checkpoint{os.sep}x.py'

  def record(level, pathname):
    return logging.LogRecord('absl', level, pathname, 1, 'message', None, None)

  assert not cli._not_library_info(record(logging.INFO, library))
  assert cli._not_library_info(record(logging.WARNING, library))
  assert cli._not_library_info(record(logging.INFO, os.path.join(REPO, 'train.py')))
