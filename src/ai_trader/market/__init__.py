"""Market data: the universe, fetching from Alpha Vantage, the offline sample, and merging."""
