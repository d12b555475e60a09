"""The results dashboard: portfolio value against QQQ, positions and trades, from the data folder.

``data`` reads the folder (pure functions, never a crash on bad lines), ``chart`` draws the
SVG on the server, ``app`` serves the page and the JSON. Nothing here writes to the data
folder, so it can be mounted read-only.
"""
