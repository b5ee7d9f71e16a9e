"""Targeting: segments and their rules, placements and banners, the bandit."""
