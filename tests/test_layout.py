"""The house's shape: imports only point down, files stay small and say their job.

Parsed with `ast`, so the rule holds for every import, not just the ones a
run happens to execute.
"""

import ast
import importlib.util
import subprocess
import sys

import pytest

from helpers import NEEDS_TORCH, REPO, cli_env, require

# Each module's floor: a module may import only modules on lower floors.
FLOORS = {
    'sentiment_jax.errors': 0, 'sentiment_jax.models': 0,
    'sentiment_jax.pretrain_models': 1,
    'sentiment_jax.jsonl': 0, 'sentiment_jax.metrics': 0,
    'sentiment_jax.timing': 0, 'sentiment_jax.hugepages': 0,
    'sentiment_jax.xla_cache': 0, 'sentiment_jax.counterfactuals': 0,
    'sentiment_jax.input_pipeline': 1, 'sentiment_jax.plots': 1,
    'sentiment_jax.data_sources': 2, 'sentiment_jax.config_checks': 1,
    'sentiment_jax.distributed': 1, 'sentiment_jax.calibration': 1,
    'sentiment_jax.sharding': 2, 'sentiment_jax.workdir': 2,
    'sentiment_jax.baseline': 2, 'sentiment_jax.mlm': 2,
    'sentiment_jax.loop': 3, 'sentiment_jax.pretrain': 4,
    'sentiment_jax.inference': 3, 'sentiment_jax.steps': 3,
    'sentiment_jax.explain': 4, 'sentiment_jax.explain.request': 4,
    'sentiment_jax.explain.attribution': 4, 'sentiment_jax.train': 4,
    'sentiment_jax.explain.figures': 5, 'sentiment_jax.explain.page': 5,
    'sentiment_jax.explain.dump': 6,
    'sentiment_jax.evaluate': 7, 'sentiment_jax.predict': 7,
    'sentiment_jax.benchmark': 7, 'sentiment_jax.compare': 3,
    'sentiment_jax.main': 8, 'sentiment_jax.serve_app': 8,
    'sentiment_jax.serve': 9, 'sentiment_jax.serve_bench': 9,
    'scaling.laws': 0, 'scaling.fitting': 1, 'scaling.runs': 1,
    'scaling.analysis': 2, 'scaling.plots': 3, 'scaling.report': 4,
    'scaling.fit': 5, 'scaling.sweep': 5,  # Above train.
    'scaling.points': 0, 'scaling.eta': 1,
    'scaling.beyond': 2,
    'analysis.stats': 0, 'analysis.lexicon': 0, 'analysis.figures': 0,
    'analysis.report': 0, 'analysis.context': 4,  # Above inference.
    'analysis.calibration': 5, 'analysis.behaviour': 5, 'analysis.shift': 5,
    'analysis.ood': 5, 'analysis.selective': 5, 'analysis.attack': 5,
    'analysis.counterfactual': 5,
    'analysis.main': 6,
    'review.findings': 0, 'review.matmuls': 0, 'review.naive': 1,
    'review.torch_twin': 1,
    'review.report': 1, 'review.variants': 4, 'review.benchmark': 5,
}
# What analysis/, review/ and scaling/ may use of the classifier package.
OPEN_TO_OTHER_PARTS = {'sentiment_jax.inference', 'sentiment_jax.metrics',
                       'sentiment_jax.models', 'sentiment_jax.jsonl',
                       'sentiment_jax.errors', 'sentiment_jax.input_pipeline',
                       'sentiment_jax.data_sources',
                       'sentiment_jax.calibration', 'sentiment_jax.baseline',
                       # review/ times and tests the real train step.
                       'sentiment_jax.steps', 'sentiment_jax.sharding',
                       'sentiment_jax.timing',
                       # Its benchmark runs under the CLI's huge-page setting.
                       'sentiment_jax.hugepages',
                       # The scaling sweep trains every point in its own
                       # process (not one each), by the function --mode=train
                       # calls, with the CLI's huge pages and XLA cache.
                       'sentiment_jax.train', 'sentiment_jax.xla_cache'}
PACKAGES = ('sentiment_jax', 'scaling', 'analysis', 'review')
MAX_LINES = 400


def module_files():
  for package in PACKAGES:
    for path in sorted((REPO / package).rglob('*.py')):
      parts = path.relative_to(REPO).with_suffix('').parts
      if parts[-1] == '__init__':
        parts = parts[:-1]
      yield '.'.join(parts), path


def project_imports(name: str, tree: ast.Module) -> set[str]:
  """Project modules imported anywhere in the file (lazy imports included)."""
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      found.add(node.module)
      # `from sentiment_jax import train` imports the module sentiment_jax.train.
      found |= {f'{node.module}.{alias.name}' for alias in node.names}
  return {module for module in found if module in FLOORS and module != name}


MODULES = list(module_files())


def test_every_module_has_a_floor():
  assert sorted(name for name, _ in MODULES
                if name not in PACKAGES) == sorted(FLOORS)


MODULES_IN_FLOORS = [(n, p) for n, p in MODULES if n not in PACKAGES]
PACKAGE_INITS = [(n, p) for n, p in MODULES if n in PACKAGES]


@pytest.mark.parametrize('name, path', MODULES_IN_FLOORS,
                         ids=[n for n, _ in MODULES_IN_FLOORS])
def test_imports_point_down(name, path):
  imported = project_imports(name, ast.parse(path.read_text()))
  upward = sorted(m for m in imported if FLOORS[m] >= FLOORS[name])
  assert not upward, f'{name} (floor {FLOORS[name]}) imports {upward}'
  if not name.startswith('sentiment_jax'):
    closed = sorted(m for m in imported if m.startswith('sentiment_jax')
                    and m not in OPEN_TO_OTHER_PARTS)
    assert not closed, f'{name} reaches into {closed}'


@pytest.mark.parametrize('name, path', PACKAGE_INITS,
                         ids=[n for n, _ in PACKAGE_INITS])
def test_importing_a_package_imports_none_of_its_modules(name, path):
  """A package's `__init__` runs before any of its modules, so at its top
  level it imports nothing of ours (`sentiment_jax.load` imports lazily)."""
  tree = ast.parse(path.read_text())
  top_level = ast.Module(body=[node for node in tree.body if isinstance(
      node, (ast.Import, ast.ImportFrom))], type_ignores=[])
  assert not project_imports(name, top_level), name


@pytest.mark.parametrize('name, path', MODULES, ids=[n for n, _ in MODULES])
def test_files_are_small_and_name_their_job(name, path):
  text = path.read_text()
  assert len(text.splitlines()) < MAX_LINES, f'{path}: over {MAX_LINES} lines'
  docstring = ast.get_docstring(ast.parse(text))
  assert docstring and len(docstring.split()) >= 5, f'{path}: no docstring'


def test_the_floor_check_catches_an_upward_import():
  tree = ast.parse('from sentiment_jax import train\n')
  assert project_imports('sentiment_jax.inference', tree) == {
      'sentiment_jax.train'}


def test_predict_loads_only_what_prediction_needs():
  """`-X importtime` of the predict path: what `--mode=predict` imports.
  Each left-out package cost 0.1-0.5 s of a one-review predict."""
  result = subprocess.run(
      [sys.executable, '-X', 'importtime', '-c',
       'import sentiment_jax.main, sentiment_jax.predict, '
       'sentiment_jax.distributed'],
      cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  loaded = {line.split('|')[-1].strip() for line in result.stderr.splitlines()
            if line.startswith('import time:')}
  assert 'sentiment_jax.inference' in loaded
  for heavy in ('tensorboardX', 'matplotlib', 'sentiment_jax.train', 'sklearn',
                'pandas', 'tensorflow_datasets', 'scipy',
                'sentiment_jax.data_sources'):
    assert heavy not in loaded, heavy


def test_training_leaves_pytorch_unloaded_but_importable():
  """tensorboardX would import PyTorch (installed for review/) on every run;
  sentiment_jax.loop hides it from that import alone."""
  code = ('import sys, sentiment_jax.train\n'
          'assert "torch" not in sys.modules, "torch loaded"\n'
          'assert sentiment_jax.train.loop.tensorboardX.SummaryWriter\n'
          'import torch, scipy.stats\n'
          'print(torch.ones(2).sum().item())\n')
  require(importlib.util.find_spec('torch') is not None, NEEDS_TORCH)
  result = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          env=cli_env(), capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.strip() == '2.0'
