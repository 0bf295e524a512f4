"""``python -m mmsamantics SUBCOMMAND ...``: the ``mmsam`` command (:mod:`mmsamantics.cli`)."""
import sys

from mmsamantics.cli import main

if __name__ == '__main__':
    sys.exit(main())
