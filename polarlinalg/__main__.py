"""``python -m polarlinalg``: the command-line interface."""

import sys

from polarlinalg.cli import main

sys.exit(main())
