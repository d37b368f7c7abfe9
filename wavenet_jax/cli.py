"""What the command-line tools share: one-line errors instead of tracebacks."""
import functools
import os
import sys
from typing import Callable, Sequence


def exit_on_error(*errors: type[BaseException]) -> Callable[[Callable[..., None]], Callable[..., None]]:
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
