"""The results dashboard: portfolio value against QQQ, positions and trades, from the data folder.

Three rooms and the chart: ``data`` reads the folder (only what changed since the last
read, never a crash on bad lines; every figure from ``ai_trader.valuation``) and keeps the
summary and its JSON; ``page`` renders the page from the summary through an autoescaped
template (``templates/page.html``); ``chart`` draws the SVG on the server; ``app`` routes
and serves the page and the JSON (``nox -s bench`` times it on a long synthetic
backtest). Nothing here writes to the data folder, so it can be mounted read-only.
"""
