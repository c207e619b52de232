"""Dossier exports with the review trail (signatures, decision history): one renderer for page, API and command.

`dossiers.report` renders the report and leaves a hook for the trail, since `dossiers` never imports
`reviews`; this module fills it. The page download lives here rather than in `reviews/views.py` because
it is the export's only HTML entry point and shares everything else with the API and the command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from dossiers.models import Candidate, Dossier
from dossiers.report import CONTENT_TYPES, FORMATS, ExportFormat, export_file_name, render_export
from dossiers.selectors import candidates_visible_to, dossier_export_data, markets_visible_to
from reviews.selectors import User, review_trail_for


@dataclass(frozen=True)
class RenderedExport:
    text: str
    file_name: str
    content_type: str


def dossier_export_render(*, dossier: Dossier | int, candidate: Candidate | None, fmt: str) -> RenderedExport:
    """The dossier report with one candidate in full (default: the top-scored) and that candidate's trail."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    data = dossier_export_data(dossier=dossier, candidate=candidate)
    text = render_export(data, fmt=cast(ExportFormat, fmt), review_trail=review_trail_for(data.candidate))
    return RenderedExport(text=text, file_name=export_file_name(data, fmt), content_type=CONTENT_TYPES[fmt])


def export_for(user: User, *, dossier_pk: int, candidate_pk: str | int | None, fmt: str) -> RenderedExport:
    """Access-checked export: an invisible dossier or a candidate of another dossier is Http404."""
    if fmt not in FORMATS:
        raise Http404("Unknown export format.")
    dossier = Dossier.objects.filter(pk=dossier_pk, market__in=markets_visible_to(user)).first()
    if dossier is None:
        raise Http404("No such dossier.")
    candidate = None
    if candidate_pk is not None and candidate_pk != "":
        if not str(candidate_pk).isdigit():
            raise Http404("No such candidate.")
        candidate = candidates_visible_to(user).filter(pk=int(candidate_pk), dossier=dossier).first()
        if candidate is None:
            raise Http404("No such candidate.")
    return dossier_export_render(dossier=dossier, candidate=candidate, fmt=fmt)


def attachment(export: RenderedExport) -> HttpResponse:
    response = HttpResponse(export.text, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(True, export.file_name) or "attachment"
    return response


@login_required
@require_GET
def dossier_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """Download the dossier report; `?candidate=<id>` picks the indication, else the highest-scored one."""
    return attachment(export_for(request.user, dossier_pk=pk, candidate_pk=request.GET.get("candidate"), fmt=fmt))
