"""Entry point: ``python -m tools.grading {generate|autograde|feedback|export} ...``."""

import sys

from tools.grading.cli import main

sys.exit(main(sys.argv[1:]))
