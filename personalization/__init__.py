"""Visitor profiling, targeted content and conversion measurement for Django shops."""

__version__ = "0.1.0"
