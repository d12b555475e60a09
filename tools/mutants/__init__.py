"""`nox -s mutants`: the matrix measures its own power.

Two parts. The deployment defects (`defects.py`) break a fresh copy of the tree on
purpose, one at a time, and run the nox session that must notice, in that copy; a defect
no session notices is a hole in the matrix. Then mutmut mutates the core modules (the
ledger, the agent's day loop, the price book, the merge) and runs the unit tests against
each mutant; the share it kills is the mutation score, held above a floor (`score.py`).
"""
