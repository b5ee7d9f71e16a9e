"""django-oscar support: add ``personalization.contrib.oscar`` to INSTALLED_APPS and name
:class:`~personalization.contrib.oscar.adapters.OscarProductAdapter` as the product adapter."""
