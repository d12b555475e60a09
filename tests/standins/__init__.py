"""Local stand-ins for the outside services ai-trader talks to: Alpha Vantage, an OpenAI-compatible
model API and Jina search/reader. They speak the real wire formats, behave as a scenario says
(rate limits, failures, a scripted model), and count what they were asked.

Standard library only, so the same code runs in tests and inside the app's image:

    PYTHONPATH=tests python -m standins --host 127.0.0.1 --port 9000 [--scenario FILE]

In tests::

    with StandIns({"symbols": ["AAPL", "QQQ"]}) as s:
        ...  # s.alphavantage_url, s.openai_base, s.jina_search_url, s.jina_reader_url, s.stats()
"""

from .server import DEFAULT_SCENARIO, StandIns, make_server

__all__ = ["DEFAULT_SCENARIO", "StandIns", "make_server"]
