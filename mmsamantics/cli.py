"""The ``mmsam`` command: one entry point for the tools a user runs.

    mmsam infer configs/matcher_toy.py --refs refs.json --img-dir photos --out-dir out
    mmsam annotate data/toy_world/val --out work_dirs/annotate/val.json
    mmsam test configs/insam_detr_toy.py work_dirs/demo/epoch_12.pth
    mmsam train configs/insam_detr_toy.py
    python -m mmsamantics infer ...                      # the same, without the script

Each subcommand runs ``tools/<name>.py`` of the source checkout the package is installed
from (``pip install -e .``) with the remaining arguments, exactly as
``python tools/<name>.py ...`` would: the tools stay the one implementation.
"""
import os.path as osp
import runpy
import sys
from typing import List, Optional

# subcommand -> (tool file under tools/, what it does)
COMMANDS = {
    'infer': ('infer.py', 'find the classes of reference examples in a folder of images'),
    'annotate': ('annotate.py', 'annotate a folder of images with SAM in the browser'),
    'test': ('test.py', 'evaluate a detector on its config\'s test set'),
    'train': ('train.py', 'train a detector'),
}


def usage() -> str:
    """The command's help: its subcommands and where they come from."""
    lines = ['usage: mmsam {' + ','.join(COMMANDS) + '} [ARGS...]', '',
             'In-context detection with Segment Anything (mmsamantics). Subcommands:']
    lines += [f'  {name:<9} {text} (tools/{tool})' for name, (tool, text) in COMMANDS.items()]
    lines += ['', '`mmsam SUBCOMMAND --help` shows its options; `mmsam --version` the version.']
    return '\n'.join(lines)


def tools_dir() -> str:
    """The ``tools/`` folder beside the package (a source checkout).

    Raises:
        FileNotFoundError: the package was not installed from a checkout.
    """
    folder = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')
    if not osp.isfile(osp.join(folder, 'infer.py')):
        raise FileNotFoundError(
            f'mmsam runs the tools of a source checkout, but {folder!r} holds none: clone the '
            'repository and install it with `pip install -e .` from its folder')
    return folder


def run_tool(path: str, args: List[str]) -> int:
    """Run the script ``path`` as ``__main__`` with ``args``; its exit status."""
    saved = sys.argv
    sys.argv = [path] + list(args)
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)  # sys.exit('error: ...'), as Python prints it
        return 1
    finally:
        sys.argv = saved
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``mmsam SUBCOMMAND ARGS...``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ('-h', '--help'):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == '--version':
        from .version import __version__
        print(f'mmsamantics {__version__}')
        return 0
    if argv[0] not in COMMANDS:
        print(f'mmsam: unknown subcommand {argv[0]!r}; choose one of {", ".join(COMMANDS)} '
              '(mmsam --help)', file=sys.stderr)
        return 2
    try:
        folder = tools_dir()
    except FileNotFoundError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    return run_tool(osp.join(folder, COMMANDS[argv[0]][0]), argv[1:])
