"""The repository speaks to users: no internal references, and a README that is a front door.

Text files must cite the papers' sections and the authors' code, never internal notes
(specification sections, issue numbers), the machines or sessions the work ran on, or
temporary folders. The README stays short and links one doc per component.
"""
import os.path as osp
import re
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
THIS = osp.relpath(osp.abspath(__file__), ROOT)
TEXT_SUFFIXES = ('.py', '.md', '.sh', '.yml', '.txt', '.cfg')
README_MAX_LINES = 250
COMPONENT_DOCS = ('insam_detr', 'matcher', 'samic', 'analysis', 'install', 'cache_and_banks')

# (pattern, what it is, what to write instead)
FORBIDDEN = [
    (r'\bSPEC\b', 'a reference to the internal specification',
     "cite the paper's section instead"),
    (r'\bissues? #?\d+\b', 'an issue number', 'describe the change itself'),
    (r'\bwas lent\b', 'how machines were allotted', 'say what was (not) measured'),
    (r'\bbuild machines?\b', 'the machines the work ran on', "say 'without downloads' etc."),
    (r'\bthis session\b', 'how the work was organised', 'describe the result'),
    (r'/tmp/', 'a temporary-folder path', 'a path under the repository'),
    (r'(?:\.\./|/work/)shared\b', "a folder outside the repository", 'docs/ or a URL'),
    (r'\bENV\.md\b', 'an internal document', 'docs/install.md'),
    (r'\bseed 00\d\b', 'an internal project name', "cite the paper (authors, section)"),
]
_FORBIDDEN = [(re.compile(p, re.IGNORECASE if p != r'\bSPEC\b' else 0), what, fix)
              for p, what, fix in FORBIDDEN]


def _git_files():
    """Tracked files plus untracked, non-ignored ones (new files count too)."""
    try:
        out = subprocess.run(
            ['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'],
            cwd=ROOT, check=True, capture_output=True).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip('not a git checkout')
    return sorted({f for f in out.split('\0') if f})


def _text_files():
    return [f for f in _git_files()
            if f.endswith(TEXT_SUFFIXES) and f != THIS and osp.isfile(osp.join(ROOT, f))]


def find_forbidden(text: str, name: str):
    """Lines of ``text`` with a forbidden pattern, as ``'name:line: what (fix): line'``."""
    hits = []
    for i, line in enumerate(text.splitlines(), 1):
        for pat, what, fix in _FORBIDDEN:
            if pat.search(line):
                hits.append(f'{name}:{i}: {what} ({fix}): {line.strip()[:120]}')
    return hits


@pytest.mark.parametrize('line,bad', [
    ('Model (SPEC §2): Deformable DETR', True),
    ('"""User-facing inference (issue 7)."""', True),
    ('fixed in issue #12', True),
    ('no GPU was lent to this task', True),
    ('cannot be reached from the build machine', True),
    ('measured in this session', True),
    ('pretrained (`/tmp/toy_sam/sam_tiny_toy.pth`)', True),
    ('seed=$repo/../shared/wheels/x.whl', True),
    ('SAMIC (seed 001, §3)', True),
    ('(paper §5.2, Fig. 2; Nagendra et al., §3)', False),
    ('their features are lent to the model by the caller', False),
    ('spec = importlib.util.spec_from_file_location(name, path)', False),
    ('--seeds 42 123 33, ref_seed=0', False),
])
def test_patterns(line, bad):
    assert bool(find_forbidden(line, 'x')) is bad


def test_no_internal_words_in_text_files():
    hits = []
    for f in _text_files():
        with open(osp.join(ROOT, f), encoding='utf-8', errors='replace') as fh:
            hits += find_forbidden(fh.read(), f)
    assert not hits, ('internal references in text files (the repository speaks to users):\n'
                      + '\n'.join(hits))


def test_readme_is_a_front_door():
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    n = len(readme.splitlines())
    assert n <= README_MAX_LINES, f'README.md has {n} lines (at most {README_MAX_LINES}); ' \
                                  'move component detail to docs/'
    problems = []
    for name in COMPONENT_DOCS:
        rel = f'docs/{name}.md'
        if not osp.isfile(osp.join(ROOT, rel)):
            problems.append(f'{rel} does not exist')
        if not re.search(r'\]\(\s*(?:\./)?' + re.escape(rel) + r'(?:#[^)]*)?\s*\)', readme):
            problems.append(f'{rel} is not linked from README.md')
    assert not problems, '\n'.join(problems)


def test_relative_links_in_readme_and_docs_resolve():
    files = ['README.md'] + [f for f in _git_files()
                             if f.startswith('docs/') and f.endswith('.md')]
    broken = []
    for f in files:
        path = osp.join(ROOT, f)
        if not osp.isfile(path):
            continue
        with open(path, encoding='utf-8') as fh:
            for i, line in enumerate(fh, 1):
                for target in re.findall(r'\]\(([^)\s]+)\)', line):
                    if re.match(r'[a-z]+:', target) or target.startswith('#'):
                        continue
                    target = target.split('#')[0]
                    if not osp.exists(osp.join(osp.dirname(path), target)):
                        broken.append(f'{f}:{i}: {target}')
    assert not broken, 'broken relative links:\n' + '\n'.join(broken)
