"""The evidence refresh panel of the candidate page."""

from __future__ import annotations

from typing import Any

from django import template

from dossiers.models import Candidate
from dossiers.selectors import refresh_panel_for

register = template.Library()


@register.inclusion_tag("dossiers/_evidence_refresh_panel.html", takes_context=True)
def evidence_refresh_panel(context: template.Context, candidate: Candidate) -> dict[str, Any]:
    """Render the refresh button, progress, query log, suggestions and new changes of `candidate`."""
    request = context["request"]
    return {
        "panel": refresh_panel_for(request.user, candidate),
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }
