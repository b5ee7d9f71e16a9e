"""Integrations with other Django apps; each is an app of its own, added to INSTALLED_APPS."""
