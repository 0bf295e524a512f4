"""Install mmsamantics (``pip install -e .``).

Two packages: ``mmsamantics``, the MMDetection plugin, and ``mmsamantics_toy``, the synthetic
toy world and toy-encoder pretraining that the demo, tools and tests use (the plugin never
imports it).

The heavy stack (torch, mmcv with ops, mmdet, ...) is installed by ``tools/setup_env.sh``;
``install_requires`` lists the runtime needs so a plain ``pip install`` in a prepared
environment resolves nothing surprising.

Like mmdet, the package carries its configs, tools and model index in ``mmsamantics/.mim/``
(symlinks for an editable install, copies for a wheel or sdist), so that OpenMMLab configs
elsewhere inherit ours with ``_base_ = 'mmsamantics::insam_detr/...'``.
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

# the plugin and the toy package, with their subpackages (configs/, tools/, tests/ stay out)
PACKAGES = ('mmsamantics', 'mmsamantics.*', 'mmsamantics_toy', 'mmsamantics_toy.*')


def read_version() -> str:
    ns: dict = {}
    with open(osp.join(osp.dirname(__file__), 'mmsamantics', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), ns)
    return ns['__version__']


# what `mmsamantics::` paths and OpenMMLab's mim read: mmsamantics/.mim/<name>
MIM_FILES = ('configs', 'tools', 'model-index.yml')


def add_mim_extension(mode: str = '') -> list:
    """Put ``configs/``, ``tools/`` and ``model-index.yml`` into ``mmsamantics/.mim``:
    relative symlinks for an editable install (``develop``, ``editable_wheel``), copies when
    a wheel or sdist is built; nothing for other commands. Returns the names that were
    links before being copied: a wheel built in an editable checkout gets them back after
    the build (:func:`main`), or the editable install would read stale copies."""
    if not mode and {'develop', 'editable_wheel'} & set(sys.argv):
        mode = 'symlink'
    elif not mode and {'sdist', 'bdist_wheel', 'build', 'build_py'} & set(sys.argv):
        mode = 'copy'
    if not mode:
        return []
    here = osp.dirname(osp.abspath(__file__))
    mim = osp.join(here, 'mmsamantics', '.mim')
    os.makedirs(mim, exist_ok=True)
    linked = [n for n in MIM_FILES if osp.islink(osp.join(mim, n))]
    for name in MIM_FILES:
        src, dst = osp.join(here, name), osp.join(mim, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copyfile(src, dst)
    return linked if mode == 'copy' else []


def parse_requirements(path: str) -> list:
    reqs = []
    with open(osp.join(osp.dirname(__file__), path)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def main() -> None:
    linked = add_mim_extension()
    try:
        setup(**SETUP)
    finally:
        if linked:  # an editable checkout: its .mim links back, not the build's copies
            add_mim_extension('symlink')


SETUP = dict(
    name='mmsamantics',
    version=read_version(),
    description='In-context semantics for Segment Anything: an MMDetection 3.x plugin',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    packages=find_packages(include=PACKAGES),
    include_package_data=True,
    package_data={'mmsamantics.app': ['static/*'],  # the annotation tool's page
                  'mmsamantics': ['.mim/configs/**/*', '.mim/tools/**/*',
                                  '.mim/model-index.yml']},
    python_requires='>=3.9',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'mim': parse_requirements('requirements/mminstall.txt'),
        'tests': parse_requirements('requirements/tests.txt'),
        'optional': parse_requirements('requirements/optional.txt'),
        'app': parse_requirements('requirements/app.txt'),
    },
    # `mmsam infer|annotate|test|train ...`: the tools of the checkout (pip install -e .)
    entry_points={'console_scripts': ['mmsam=mmsamantics.cli:main']},
    zip_safe=False,
)

main()
