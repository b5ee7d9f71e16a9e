"""The REST API (Django REST Framework) for headless shops and the page scripts."""
