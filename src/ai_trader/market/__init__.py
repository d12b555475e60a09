"""Markets and their data: one module per market (``us``, ``cn``, ``crypto``, each a
``base.Market``; ``markets`` lists them), the calendars, fetching from Alpha Vantage, the
offline samples, merging and the price book."""
