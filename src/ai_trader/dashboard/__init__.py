"""The results dashboard: portfolio value against QQQ, positions and trades, from the data folder.

``data`` reads the folder (only what changed since the last read, never a crash on bad
lines; the figures come from ``ai_trader.valuation``), ``chart`` draws the SVG on the
server, ``app`` serves the page and the JSON (``nox -s bench`` times it on a long synthetic
backtest). Nothing here writes to the data folder, so it can be mounted read-only.
"""
