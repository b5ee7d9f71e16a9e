"""A project whose user model logs in by email and has no ``username``: the admin must work
with it (``tests/test_admin_trust.py`` runs ``tests.customuser.check`` in a process of its own,
with ``tests.customuser.settings``)."""
