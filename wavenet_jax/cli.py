"""What the command-line tools share: one-line errors instead of tracebacks, quiet libraries."""
import functools
import logging as python_logging
import os
import sys
from typing import Callable, Sequence

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


def exit_on_error(
    *errors: type[BaseException]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
  """Decorates an absl `main`: the listed exceptions print one line and exit with status 1.

  Bad input (a missing checkpoint, an unreadable file, a flag the model cannot use)
  is the user's to fix, so it gets `PROGRAM: error: MESSAGE`, not a traceback.
  """

  def decorator(main: Callable[[Sequence[str]], None]) -> Callable[[Sequence[str]], None]:

    @functools.wraps(main)
    def wrapped(argv: Sequence[str]) -> None:
      try:
        main(argv)
      except errors as error:
        print(f'{os.path.basename(sys.argv[0])}: error: {error}', file=sys.stderr, flush=True)
        sys.exit(1)

    return wrapped

  return decorator
