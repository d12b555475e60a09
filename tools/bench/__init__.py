"""`nox -s bench`: what the ai-trader container costs and how fast it answers (issue 6).

A package of the developer tooling that borrows from the suite: the engine helper of the
container suite (`integration/engine.py`, the Docker SDK client), the stand-ins
(`standins`), the product's own readiness probe and tool-result reading, and the shared
facts (`tools/facts.py`: version, revision, image and base-image names). `probes` asks the
services and the engine, `timings` measures the running container, `images` the image and
its builds, `report` prints the table and writes the JSON. docs/BENCHMARKS.md explains each
figure.

Run as `python -m bench` with tools/ and tests/ on PYTHONPATH (what `nox -s bench` sets).
"""
