"""What the command-line tools share: one-line errors instead of tracebacks, quiet libraries.

Every tool (train.py, sample.py, evaluate.py, experiments/report.py, the prepare CLI) has an
`@cli.exit_on_error(...)` main started by `cli.run(main)`: a bad flag, an unknown
`--config.KEY` and each listed error print `PROGRAM: error: MESSAGE` on one line and exit with
status 1, and the INFO lines of QUIET_LIBRARIES are dropped from the log (their warnings still
show).
"""
import functools
import logging as python_logging
import os
import sys
from typing import Callable, NoReturn, Sequence

from absl import app
from absl import flags
from absl import logging

# Libraries whose INFO lines (dozens per checkpoint) would bury a tool's own output.
QUIET_LIBRARIES = (f'{os.sep}orbax{os.sep}', f'{os.sep}tensorflow_datasets{os.sep}',
                   f'{os.sep}grain{os.sep}')


def _not_library_info(record: python_logging.LogRecord) -> bool:
  return (record.levelno >= python_logging.WARNING
          or not any(library in record.pathname for library in QUIET_LIBRARIES))


def hide_library_info_logs() -> None:
  """Drops the INFO lines of QUIET_LIBRARIES from absl's log; their warnings still show."""
  logging.get_absl_handler().addFilter(_not_library_info)


def fail(message: str) -> NoReturn:
  """Prints `PROGRAM: error: MESSAGE` (one line) to stderr and exits with status 1."""
  one_line = ' '.join(str(message).split())
  print(f'{os.path.basename(sys.argv[0])}: error: {one_line}', file=sys.stderr, flush=True)
  sys.exit(1)


def _config_key_error(error: KeyError, argv: Sequence[str]) -> str:
  """'--config.a.b=v: no such config key 'b' (Did you mean ...?)' from ml_collections' error."""
  first_line, *hint = str(error.args[0] if error.args else error).splitlines()
  key = first_line.strip().strip('\'"')
  overrides = [arg for arg in argv[1:] if arg.startswith('--config.')
               and key in arg.split('=', 1)[0].split('.')]
  return (f'{" ".join(overrides) or "a --config override"}: no such config key {key!r}'
          + (f' ({" ".join(hint).strip()})' if hint else ''))


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's flag parsing, with a one-line error for a bad flag or an unknown config key."""
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as error:
    fail(str(error))
  except OSError as error:  # ml_collections: a --config file that cannot be read.
    fail(f'--config: {error}')
  except (AttributeError, KeyError) as error:  # ml_collections: a --config.KEY with no KEY.
    key_error = error if isinstance(error, KeyError) else (error.args or (None,))[0]
    if isinstance(key_error, KeyError):
      fail(_config_key_error(key_error, argv))
    fail(f'--config: {error} (a config file defines get_config())')


def exit_on_error(
    *errors: type[BaseException]
) -> Callable[[Callable[[Sequence[str]], None]], Callable[[Sequence[str]], None]]:
  """Decorates an absl `main`: quiet library logs, and the listed exceptions as one line.

  Bad input (a missing checkpoint, an unreadable file, a flag the model cannot use) is the
  user's to fix, so it gets `PROGRAM: error: MESSAGE` and status 1, not a traceback.
  """

  def decorator(main: Callable[[Sequence[str]], None]) -> Callable[[Sequence[str]], None]:

    @functools.wraps(main)
    def wrapped(argv: Sequence[str]) -> None:
      hide_library_info_logs()
      if len(argv) > 1:
        raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
      try:
        main(argv)
      except errors as error:
        fail(str(error))

    return wrapped

  return decorator


def run(main: Callable[[Sequence[str]], None]) -> None:
  """`app.run(main)` with one-line errors for bad flags; `main` is `exit_on_error`-decorated."""
  app.run(main, flags_parser=parse_flags)
