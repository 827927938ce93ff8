"""``python -m graves ...``: the ``graves`` command without the console script (e.g. ``PYTHONPATH=src``)."""

import sys

from graves.cli import main

sys.exit(main())
