"""Recommendations: the engine that fits ranked lists, the strategies that serve them, and their
offline evaluation."""
