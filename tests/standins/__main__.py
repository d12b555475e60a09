"""Run the stand-ins as a process: ``python -m standins --host 0.0.0.0 --port 9000``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .server import make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="standins", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--scenario", type=Path, help="a JSON file with the scenario")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    scenario = None
    if args.scenario is not None:
        try:
            scenario = json.loads(args.scenario.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"standins: cannot read scenario {args.scenario}: {exc}", file=sys.stderr)
            return 2
        if not isinstance(scenario, dict):
            print(f"standins: scenario {args.scenario} is not a JSON object", file=sys.stderr)
            return 2
    try:
        server = make_server(args.host, args.port, scenario, verbose=args.verbose)
    except OSError as exc:
        print(f"standins: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: FrameType | None) -> None:
        server.state.stopping.set()  # a request in its delay is answered now
        # shutdown() waits for serve_forever() to return, so it must not run on that thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    print(f"standins listening on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
