"""The package's layers point one way, and its files and functions stay small.

Every ``.py`` under ``mmsamantics/`` is parsed with ``ast`` (nothing is imported): each
``import`` / ``from ... import`` of an ``mmsamantics`` module, absolute or relative, at
module level or inside a function, is mapped to the subpackage it reaches. A module may
import from its own layer or below, never from above, and no two subpackages may import
each other, directly or through others (see docs/cache_and_banks.md, "Package layout").
``mmsamantics_toy`` (toy world, toy pretraining) sits above the whole plugin: no
``mmsamantics`` module imports it, and its files obey the same size limits.
"""
import ast
import os.path as osp
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'mmsamantics'
TOY_PACKAGE = REPO / 'mmsamantics_toy'  # imports mmsamantics, never imported by it
ROOT = '<mmsamantics/__init__.py>'  # the package itself: imports what registers modules

# lowest first; a subpackage (or top-level module) imports only from its layer or below
LAYERS: Dict[str, int] = {
    'utils': 0,         # checkpoints, freezing, image helpers
    'version': 0,       # mmsamantics/version.py
    'registry': 0,      # the mmsamantics scope: children of mmdet's registries
    'datasets': 1,      # datasets, transforms, feature-cache format, toy class names
    'structures': 2,    # signatures, reference banks, ReferenceStore
    'evaluation': 3,    # mmdet metrics, k-shot summaries
    'models': 4,        # backbones, SAM parts, heads, detectors
    'engine': 5,        # hooks, tool launch and preflight
    'apis': 6,          # inference API, cache and bank builders, model loading
    'analysis': 6,      # t-SNE of reference features
    'probing': 6,       # linear probing on mmpretrain
    'prompt_study': 6,  # box-prompt study, SAMBoxPrompter
    'wsss': 6,          # SAM pseudo-labels for WSSS
    'app': 6,           # the annotation tool (web server on the inference API)
    ROOT: 7,
    'cli': 7,           # the mmsam command (runs tools/)
    '__main__': 7,      # python -m mmsamantics: the mmsam command
}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80

Import = Tuple[str, int, str]  # (file relative to the repo, line, imported subpackage)


def package_files(package: Path = PACKAGE) -> List[Path]:
    return sorted(p for p in package.rglob('*.py') if '__pycache__' not in p.parts)


def subpackage(module: str) -> str:
    """``mmsamantics.models.sam.presets`` -> ``models``; ``mmsamantics`` -> ROOT."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ROOT


def module_name(path: Path) -> Tuple[List[str], List[str]]:
    """(dotted parts of the module, parts of the package it lives in) for a file."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        return parts[:-1], parts[:-1]
    return parts, parts[:-1]


def imported_modules(node: ast.AST, package: List[str]) -> List[str]:
    """The absolute names an import statement reaches (``from pkg import name`` may name a
    module, so each name counts as ``pkg.name``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = package[:len(package) - node.level + 1]
        if node.module:
            base = base + node.module.split('.')
    else:
        base = (node.module or '').split('.')
    return ['.'.join(base + [a.name]) for a in node.names if a.name != '*'] or ['.'.join(base)]


def source_imports(path: Path, source: Optional[str] = None) -> Iterator[Import]:
    """Every mmsamantics import of a file, at any depth (functions, classes, ``if``)."""
    _, package = module_name(path)
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    rel = str(path.relative_to(REPO))
    for node in ast.walk(tree):
        for mod in imported_modules(node, package):
            if mod == 'mmsamantics' or mod.startswith('mmsamantics.'):
                yield rel, node.lineno, subpackage(mod)


def toy_imports(path: Path, source: Optional[str] = None) -> List[str]:
    """``file:line`` of every import of ``mmsamantics_toy`` in a file, at any depth."""
    _, package = module_name(path)
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    rel = str(path.relative_to(REPO))
    return [f'{rel}:{node.lineno}' for node in ast.walk(tree)
            for mod in imported_modules(node, package)
            if mod.split('.')[0] == TOY_PACKAGE.name]


def own_subpackage(path: Path) -> str:
    parts, _ = module_name(path)
    return subpackage('.'.join(parts))


def layer_violations(path: Path, source: Optional[str] = None) -> List[str]:
    own = own_subpackage(path)
    out = []
    for rel, line, target in source_imports(path, source):
        if target != own and LAYERS.get(target, -1) > LAYERS[own]:
            out.append(f'{rel}:{line}: {own} (layer {LAYERS[own]}) imports {target} '
                       f'(layer {LAYERS[target]})')
    return out


def find_cycles(edges: Dict[str, Dict[str, str]]) -> List[List[str]]:
    """Strongly connected components of more than one subpackage (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return cycles


def test_layer_table_covers_the_package():
    found = {own_subpackage(p) for p in package_files()}
    assert found - set(LAYERS) == set(), (
        f'subpackages without a layer: {sorted(found - set(LAYERS))}; add them to LAYERS '
        'here and to docs/cache_and_banks.md ("Package layout")')
    assert set(LAYERS) - found == set(), f'stale LAYERS entries: {sorted(set(LAYERS) - found)}'


def test_no_import_from_a_higher_layer():
    bad = [v for p in package_files() for v in layer_violations(p)]
    assert not bad, 'imports pointing up the layers:\n' + '\n'.join(bad)


def test_no_import_cycle_between_subpackages():
    edges: Dict[str, Dict[str, str]] = defaultdict(dict)
    for p in package_files():
        own = own_subpackage(p)
        for rel, line, target in source_imports(p):
            if target != own:
                edges[own].setdefault(target, f'{rel}:{line}')
    cycles = find_cycles(edges)
    lines = [f'{a} -> {b} ({edges[a][b]})' for comp in cycles for a in comp for b in comp
             if b in edges.get(a, {})]
    assert not cycles, f'subpackages importing each other {cycles}:\n' + '\n'.join(lines)


def test_plugin_never_imports_the_toy_package():
    assert (TOY_PACKAGE / '__init__.py').is_file()
    bad = [v for p in package_files() for v in toy_imports(p)]
    assert not bad, ('mmsamantics imports mmsamantics_toy (the toy package sits above the '
                     'plugin; move the shared part into mmsamantics):\n' + '\n'.join(bad))


def test_checker_sees_relative_absolute_and_lazy_imports():
    """The checks above would catch each kind of upward import (not vacuous)."""
    path = PACKAGE / 'utils' / 'example.py'
    src = ('from ..models import x\n'
           'import mmsamantics.apis.inferencer\n'
           'def f():\n'
           '    from mmsamantics import engine\n'
           '    from .. import wsss\n')
    found = layer_violations(path, src)
    assert [v.split(': ', 1)[0] for v in found] == [
        'mmsamantics/utils/example.py:1', 'mmsamantics/utils/example.py:2',
        'mmsamantics/utils/example.py:4', 'mmsamantics/utils/example.py:5']
    assert 'utils (layer 0) imports models (layer 4)' in found[0]
    assert find_cycles({'a': {'b': ''}, 'b': {'c': ''}, 'c': {'a': ''}, 'd': {'a': ''}}) == [
        ['a', 'b', 'c']]
    toy = ('import mmsamantics_toy\n'
           'def f():\n'
           '    from mmsamantics_toy.toy_world import make_toy_world\n'
           'from mmsamantics.datasets.toy_class_names import toy_classes\n')
    assert toy_imports(path, toy) == ['mmsamantics/utils/example.py:1',
                                      'mmsamantics/utils/example.py:3']


def test_files_and_functions_are_small():
    long_files, long_functions = [], []
    for p in package_files() + package_files(TOY_PACKAGE):
        rel = osp.relpath(p, REPO)
        text = p.read_text()
        n = len(text.splitlines())
        if n > MAX_FILE_LINES:
            long_files.append(f'{rel}: {n} lines')
        for node in ast.walk(ast.parse(text, rel)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION_LINES:
                    long_functions.append(f'{rel}:{node.lineno} {node.name}: {size} lines')
    assert not long_files, (f'files over {MAX_FILE_LINES} lines (split them by role):\n'
                            + '\n'.join(long_files))
    assert not long_functions, (f'functions over {MAX_FUNCTION_LINES} lines:\n'
                                + '\n'.join(long_functions))

