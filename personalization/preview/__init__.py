"""Staff preview: see the site as a segment, a country, a first or returning visitor, the
control or the personalized group, with a banner or a recommendation strategy forced, and
nothing of it recorded.

:mod:`.state` keeps the preview in a signed cookie bound to the staff member; :mod:`.visitor`
is the ``request.visitor`` of a previewing request; :mod:`.toolbar` marks the previewed pages;
:mod:`.views` is the staff page that starts and ends a preview (``personalization:preview``).
"""

from .state import COOKIE_NAME, Preview, may_preview
from .toolbar import handle_response, render_toolbar
from .visitor import PreviewVisitor, overlay, visitor_for

__all__ = [
    "COOKIE_NAME",
    "Preview",
    "PreviewVisitor",
    "handle_response",
    "may_preview",
    "overlay",
    "render_toolbar",
    "visitor_for",
]
