"""The flakes campaign: chosen sessions or tests, run again and again under load (flakes.py)."""
