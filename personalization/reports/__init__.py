"""The conversion report: its period, statistics and aggregation (views live in views.py)."""
