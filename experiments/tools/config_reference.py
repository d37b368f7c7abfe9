r"""Prints docs/configs.md: every config key, its default and meaning, from experiments/default.py.

  python -m experiments.tools.config_reference > docs/configs.md

A key's meaning is its comment in experiments/default.py: the comment at the end of its line,
else the comment lines right above it; a section's (`config.data = ...ConfigDict()`) the
comment lines above it. A key without a comment is an error, so the reference stays complete;
tests/test_docs.py fails when docs/configs.md is not what this prints.
"""
from wavenet_jax import cli

cli.exit_unless_run_as_module(__spec__, __file__)  # Run by path, `experiments` is not importable.
# pylint: disable=g-import-not-at-top,wrong-import-position
import ast
import inspect
import io
import sys
import tokenize
from typing import Any

import ml_collections

from experiments import default

HEADER = """\
# Config reference

Every key of `experiments/default.py`, which every config under `experiments/` starts from,
with its default there and its meaning. Any key is overridden on the command line:
`python train.py --config=experiments/tiny.py --workdir=runs/tiny --config.train.num_steps=2000`
(a misspelt key is a one-line error). Generated from the comments of `experiments/default.py`
by `python -m experiments.tools.config_reference > docs/configs.md`: edit those, not this page.
"""


def _comments(source: str) -> dict[int, str]:
  """Line number -> the text of the comment on it (without '#')."""
  tokens = tokenize.generate_tokens(io.StringIO(source).readline)
  return {token.start[0]: token.string.lstrip('#').strip()
          for token in tokens if token.type == tokenize.COMMENT}


def _key(target: ast.expr) -> str | None:
  """'data.mel.n_mels' for `config.data.mel.n_mels`, else None."""
  names = []
  while isinstance(target, ast.Attribute):
    names.append(target.attr)
    target = target.value
  if isinstance(target, ast.Name) and target.id == 'config' and names:
    return '.'.join(reversed(names))
  return None


def meanings(source: str) -> dict[str, str]:
  """Config key (or section) -> its comment in `source`, in the order of the source.

  Raises:
    ValueError: naming the key, for an assignment with no comment.
  """
  comments = _comments(source)
  code_lines = {line for line, text in enumerate(source.splitlines(), 1)
                if text.strip() and not text.strip().startswith('#')}
  found = {}
  for node in ast.walk(ast.parse(source)):
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
      continue
    key = _key(node.targets[0])
    if key is None:
      continue
    own = [comments[line] for line in range(node.lineno, node.end_lineno + 1)
           if line in comments and line in code_lines]
    above, line = [], node.lineno - 1
    while line in comments and line not in code_lines:
      above.insert(0, comments[line])
      line -= 1
    text = ' '.join(own or above)
    if not text:
      raise ValueError(f'experiments/default.py: config.{key} has no comment (line '
                       f'{node.lineno}); its comment is its entry in docs/configs.md.')
    found[key] = text
  return found


def _default(config: ml_collections.ConfigDict, key: str) -> Any:
  for name in key.split('.'):
    config = config[name]
  return config


def _cell(text: str) -> str:
  return text.replace('|', '\\|')  # A table cell.


def render(source: str, config: ml_collections.ConfigDict) -> str:
  """The markdown of docs/configs.md for default.py's `source` and its `config`."""
  sections = {'': 'Keys outside any section.'}  # Section -> its meaning, in source order.
  rows = {'': []}
  for key, meaning in meanings(source).items():
    value = _default(config, key)
    if isinstance(value, ml_collections.ConfigDict):
      sections[key], rows[key] = meaning, []
      continue
    shown = 'unset' if value is None else f'`{_cell(repr(value))}`'
    rows[key.rpartition('.')[0]].append(f'| `{key}` | {shown} | {_cell(meaning)} |')
  lines = [HEADER.rstrip()]
  for section, meaning in sections.items():
    lines += ['', f'## `config.{section}`' if section else '## Top level', '', meaning, '',
              '| key | default | meaning |', '|---|---|---|', *rows[section]]
  return '\n'.join(lines) + '\n'


def main() -> None:
  sys.stdout.write(render(inspect.getsource(default), default.get_config()))


if __name__ == '__main__':
  main()
