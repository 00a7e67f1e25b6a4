"""``python -m sagan`` runs the command line."""

import sys

from sagan.cli import main

sys.exit(main())
