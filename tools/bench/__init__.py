"""`nox -s bench`: what the ai-trader container costs and how fast it answers (issue 6).

A small package beside the suite it borrows from: the engine helper of the container suite
(`integration/engine.py`, the Docker SDK client), the stand-ins (`standins`), the product's
own readiness probe and tool-result reading, and the noxfile's version and base-image
helpers. `probes` asks the services and the engine, `timings` measures the running
container, `images` the image and its builds, `report` prints the table and writes the
JSON. docs/BENCHMARKS.md explains each figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as `python -m bench` from the repository (what `nox -s bench` does): the noxfile,
# the stand-ins and the suite's engine helper are imported from the checkout.
_TESTS = Path(__file__).resolve().parents[1]
for _folder in (_TESTS, _TESTS.parent):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))
