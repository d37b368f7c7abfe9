"""What the command-line tools share: one-line errors instead of tracebacks, a quiet console.

Every tool (train.py, sample.py, evaluate.py, experiments/tools/report.py, the prepare CLI) has
an `@cli.exit_on_error(...)` main started by `cli.run(main)`: a bad flag, an unknown
`--config.KEY` and each listed error print `PROGRAM: error: MESSAGE` on one line and exit with
status 1. The console shows the tool's own lines: the INFO lines of QUIET_LIBRARIES and the
library notices in NOISE are dropped, a warning repeated word for word (one per evaluation)
shows once, and progress bars show on a terminal only; `--verbosity=1` (absl's flag) shows
everything.
"""
import functools
import importlib.machinery
import logging as python_logging
import os
import pathlib
import sys
from typing import Callable, NoReturn, Optional, Sequence

from absl import app
from absl import flags
from absl import logging

# Libraries whose INFO lines (dozens per checkpoint) would bury a tool's own output.
QUIET_LIBRARIES = (f'{os.sep}orbax{os.sep}', f'{os.sep}tensorflow_datasets{os.sep}',
                   f'{os.sep}grain{os.sep}', f'{os.sep}jax{os.sep}')

# Libraries' warnings that tell the user nothing to act on, by the start of their message.
NOISE = (
    'Using custom data configuration',  # TFDS, at every evaluation: our builder's config.
    'Unable to initialize backend',  # JAX looking for a TPU on a host without one.
    'CheckpointManagerOptions.read_only=True',  # orbax, on every inference restore.
    'Given directory is read only',  # orbax, likewise.
    'Matplotlib is building the font cache',  # matplotlib, once per machine.
)


class _QuietFilter(python_logging.Filter):
  """Drops library INFO lines, NOISE, and warnings already shown (same place, same words)."""

  def __init__(self):
    super().__init__()
    self._warned = set()

  def filter(self, record: python_logging.LogRecord) -> bool:
    message = record.getMessage()
    if message.startswith(NOISE):
      return False
    if record.levelno < python_logging.WARNING:
      return not any(library in record.pathname for library in QUIET_LIBRARIES)
    if record.levelno >= python_logging.ERROR:
      return True
    seen = (record.pathname, record.lineno, message)
    if seen in self._warned:
      return False
    self._warned.add(seen)
    return True


def quiet_console() -> None:
  """Filters absl's log as the module docstring says, unless `--verbosity` is raised above 0.

  Progress bars (TFDS preparing a dataset) are drawn on a terminal only: in a log file or a
  pipe each redraw is another line.
  """
  if logging.get_verbosity() <= logging.INFO:
    logging.get_absl_handler().addFilter(_QuietFilter())
    tfds = sys.modules.get('tensorflow_datasets')  # Imported by the tools that prepare data.
    if tfds is not None and not sys.stderr.isatty():
      tfds.display_progress_bar(False)


def exit_unless_run_as_module(spec: Optional[importlib.machinery.ModuleSpec], path: str) -> None:
  """Exits with a one-line hint when a script under experiments/ was started by its path.

  Such scripts import the `experiments` package, which Python finds from the repository root
  with `python -m experiments.benchmarks.NAME`, the one documented form.

  Args:
    spec: the script's `__spec__` (None when it was run by path).
    path: the script's `__file__`.
  """
  if spec is None:
    parts = pathlib.Path(path).resolve().with_suffix('').parts
    start = len(parts) - 1 - parts[::-1].index('experiments')
    fail(f'run it from the repository root as a module: python -m {".".join(parts[start:])}')


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
  """Decorates an absl `main`: a quiet console, and the listed exceptions as one line.

  Bad input (a missing checkpoint, an unreadable file, a flag the model cannot use) is the
  user's to fix, so it gets `PROGRAM: error: MESSAGE` and status 1, not a traceback.
  """

  def decorator(main: Callable[[Sequence[str]], None]) -> Callable[[Sequence[str]], None]:

    @functools.wraps(main)
    def wrapped(argv: Sequence[str]) -> None:
      quiet_console()
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
