"""Reporting: leaderboards, figures, published scores and regression checks."""
