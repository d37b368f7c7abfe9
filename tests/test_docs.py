"""The README and docs/ as a reader uses them: every command runs as printed, the config
reference is current, no path outside the repository."""
import inspect
import pathlib
import re
import shlex

import pytest

from experiments import default
from experiments.tools import config_reference

REPO = pathlib.Path(__file__).resolve().parent.parent
PAGES = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md')),
         *sorted((REPO / 'experiments' / 'results').glob('**/README.md'))]
PYTHONS = ('python', 'python3', 'python3.11', 'python3.12', '.venv/bin/python')
# absl's own flags, defined by every absl program.
ABSL_FLAGS = {'help', 'helpshort', 'helpfull', 'verbosity', 'v', 'logtostderr',
              'alsologtostderr'}
# An absl flag or an argparse option (launch/multiprocess.py).
_DEFINE = re.compile(r"DEFINE_\w+\(\s*'(\w+)'|add_argument\(\s*'--(\w+)'")
_IMPORT = re.compile(r'^from ((?:experiments|wavenet_jax)[\w.]*) import (\w+)', re.M)


def _shell_lines(text: str) -> list[str]:
  """The commands of a page: ```bash blocks' lines and inline `python ...` code spans."""
  lines = []
  for block in re.findall(r'```bash\n(.*?)```', text, re.S):
    for line in block.replace('\\\n', ' ').splitlines():
      line = re.sub(r'(^|\s)#.*', '', line).strip()  # A comment.
      if line:
        lines.append(line)
  prose = re.sub(r'```.*?```', '', text, flags=re.S)
  lines += re.findall(r'`((?:\.venv/bin/)?python[\d.]* [^`]+)`', prose)
  return [command.strip() for line in lines for command in re.split(r'&&|;|\|\|', line)]


def _commands() -> list[tuple[str, str]]:
  return [(page.name, command) for page in PAGES
          for command in _shell_lines(page.read_text(encoding='utf-8'))]


def _config_keys() -> set[str]:
  keys = set()

  def walk(config, prefix):
    for key, value in config.items():
      keys.add(prefix + key)
      if hasattr(value, 'items'):
        walk(value, f'{prefix}{key}.')

  walk(default.get_config(), '')
  return keys


def _defined_flags(script: pathlib.Path) -> set[str]:
  """Flags a script defines itself or in the repository modules it imports."""
  source = script.read_text(encoding='utf-8')
  sources = [source]
  for package, name in _IMPORT.findall(source):
    for candidate in (REPO / package.replace('.', '/') / f'{name}.py',
                      REPO / f'{package.replace(".", "/")}.py'):
      if candidate.is_file():
        sources.append(candidate.read_text(encoding='utf-8'))
  return {''.join(match) for text in sources for match in _DEFINE.findall(text)}


def _check_flags(where: str, flag_args: list[str], known: set[str] | None) -> None:
  """Each --flag names a config key, a --config file, or a flag in `known` (None: any)."""
  for arg in flag_args:
    name, _, value = arg[2:].partition('=')
    if name.startswith('config.'):
      assert name[len('config.'):] in _config_keys(), f'{where}: no config key {name}'
    elif name == 'config' and value:
      assert (REPO / value.split(':')[0]).is_file(), f'{where}: no config file {value}'
    elif known is not None:
      assert name in known | ABSL_FLAGS or (name.startswith('no') and name[2:] in known), (
          f'{where}: {arg} is not a flag of the script')


def _check_command(where: str, words: list[str]) -> None:
  while words and (re.match(r'^\w+=', words[0]) or words[0] == 'taskset'):
    words = words[3:] if words[0] == 'taskset' else words[1:]  # taskset -c N.
  if not words:
    return
  words = [word.strip('[]') for word in words if '...' not in word]
  rest = []
  if '--' in words:
    at = words.index('--')
    words, rest = words[:at], words[at + 1:]
  if words[0] in PYTHONS:
    if words[1] == '-m':
      module = words[2]
      if module.split('.')[0] in ('venv', 'pip', 'pytest') or module.split('.')[-1].isupper():
        return  # Not ours, or a placeholder (experiments.tools.NAME).
      path = REPO / module.replace('.', '/')
      script = path / '__main__.py' if path.is_dir() else path.with_suffix('.py')
      assert script.is_file(), f'{where}: no module {module}'
      args = words[3:]
    else:
      script = REPO / words[1]
      assert script.is_file(), f'{where}: no script {words[1]}'
      args = words[2:]
    _check_flags(where, [arg for arg in args if arg.startswith('--')], _defined_flags(script))
    if rest:
      _check_command(where, rest)
  elif words[0] == 'bash' or words[0].endswith('.sh'):
    script = REPO / (words[1] if words[0] == 'bash' else words[0])
    assert script.is_file(), f'{where}: no script {script}'
    text = script.read_text(encoding='utf-8') + (REPO / 'launch' / 'common.sh').read_text()
    for arg in words[1:]:
      if arg.startswith('--') and not arg.startswith('--config'):
        assert f'{arg[2:].split("=")[0]}' in text, f'{where}: {arg} is not an option of {script}'
    _check_flags(where, [arg for arg in words + rest if arg.startswith('--config')], None)


@pytest.mark.parametrize('page,command', _commands())
def test_documented_commands_name_what_exists(page, command):
  _check_command(f'{page}: {command}', shlex.split(command))


def test_the_checker_sees_a_wrong_flag_and_module():
  with pytest.raises(AssertionError, match='not a flag'):
    _check_command('x', shlex.split('python sample.py --workdir=w --no_such_flag=1'))
  with pytest.raises(AssertionError, match='no config key'):
    _check_command('x', shlex.split('python train.py --config.train.no_such_key=1'))
  with pytest.raises(AssertionError, match='no module'):
    _check_command('x', shlex.split('python -m experiments.benchmarks.no_such_benchmark'))


def test_every_page_has_commands():
  assert {page for page, _ in _commands()} >= {'README.md', 'training.md', 'data.md',
                                               'sampling.md', 'performance.md', 'scaling.md'}


def test_the_readme_is_short_and_every_section_links_to_its_page():
  text = (REPO / 'README.md').read_text(encoding='utf-8')
  assert len(text.splitlines()) <= 210
  for section in text.split('\n## ')[1:]:
    assert '](docs/' in section or '](experiments/results/' in section, section.splitlines()[0]


def test_links_lead_to_files():
  for page in PAGES:
    for target in re.findall(r'\]\(([^)#]+)(?:#[^)]*)?\)', page.read_text(encoding='utf-8')):
      if not target.startswith('http'):
        assert (page.parent / target).exists(), f'{page.name}: {target}'


def test_no_path_outside_the_repository():
  for path in [*PAGES, REPO / 'experiments' / 'common.py']:
    text = path.read_text(encoding='utf-8')
    assert '../shared' not in text and '/work/' not in text, path


def test_the_config_reference_is_current():
  expected = config_reference.render(inspect.getsource(default), default.get_config())
  assert (REPO / 'docs' / 'configs.md').read_text(encoding='utf-8') == expected, (
      'docs/configs.md is stale: python -m experiments.tools.config_reference > docs/configs.md')


def test_the_config_reference_follows_the_comments():
  source = inspect.getsource(default)
  config = default.get_config()
  line = '  config.checkpoint.max_to_keep = 3  # Older checkpoints are deleted.\n'
  assert line in source
  changed = config_reference.render(
      source.replace(line, line.replace('Older checkpoints', 'Checkpoints beyond it')), config)
  assert '| `checkpoint.max_to_keep` | `3` | Checkpoints beyond it are deleted. |' in changed
  with pytest.raises(ValueError, match='config.checkpoint.max_to_keep has no comment'):
    config_reference.render(source.replace(line, line.split('  #')[0] + '\n'), config)


def test_every_config_key_is_documented():
  reference = (REPO / 'docs' / 'configs.md').read_text(encoding='utf-8')
  for key in _config_keys():
    assert f'`{key}`' in reference or f'`config.{key}`' in reference, key
