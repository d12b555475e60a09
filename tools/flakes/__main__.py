"""``python -m flakes`` from tools/: see flakes.py."""

import sys

from flakes.flakes import main

raise SystemExit(main(sys.argv[1:]))
