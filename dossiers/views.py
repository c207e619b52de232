"""HTML pages for dossiers: lookup through a selector, render; writes go through services."""

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from dossiers.forms import CandidateFilterForm, ImportUploadForm
from dossiers.permissions import can_import
from dossiers.report import DEFAULT_DISCLAIMER
from dossiers.report_parser import ReportError
from dossiers.selectors import (
    DossierExportData,
    candidate_get_for,
    candidate_list_for,
    dossier_get_for,
    dossier_page,
    drug_get_for,
    import_runs_for,
    interactions_by_severity,
    markets_visible_to,
)
from dossiers.services.uploads import upload_import

logger = logging.getLogger(__name__)

CANDIDATES_PER_PAGE = 50
EXPORT_LABELS = [("md", "Markdown"), ("html", "Printable HTML"), ("json", "JSON")]


@login_required
def candidate_list(request: HttpRequest) -> HttpResponse:
    """Candidates of the user's markets: filters, search and sort from the query string, 50 a page."""
    form = CandidateFilterForm(request.GET or None, markets=markets_visible_to(request.user))
    candidates = candidate_list_for(request.user, form.filters() if form.is_bound else {})
    page = Paginator(candidates, CANDIDATES_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "dossiers/candidate_list.html", {"form": form, "page": page})


@login_required
def candidate_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The dossier report with this candidate in full; the review workflow plugs into its `workflow` block."""
    candidate = candidate_get_for(request.user, pk)
    dossier = dossier_get_for(request.user, candidate.dossier_id)
    return _render_dossier(request, dossier_page(dossier, candidate))


@login_required
def dossier_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The dossier report with its top-scored candidate in full and the others one click away."""
    return _render_dossier(request, dossier_page(dossier_get_for(request.user, pk)))


def _render_dossier(request: HttpRequest, page: DossierExportData) -> HttpResponse:
    groups = interactions_by_severity(page.dossier)
    context = {
        "page": page,
        "dossier": page.dossier,
        "candidate": page.candidate,
        "interaction_groups": groups,
        "named_interactions": sum(len(group.interactions) for group in groups),
        "export_formats": EXPORT_LABELS,
        "default_disclaimer": DEFAULT_DISCLAIMER,
    }
    return render(request, "dossiers/dossier_detail.html", context)


@login_required
def drug_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A drug's predicted indications across the user's markets, and its best raw predictions per market."""
    return render(request, "dossiers/drug_detail.html", {"page": drug_get_for(request.user, pk)})


@login_required
def import_upload(request: HttpRequest) -> HttpResponse:
    """Curators upload a dossier report or a prediction CSV; the page lists the latest import runs."""
    if not can_import(request.user):
        raise PermissionDenied("Only curators can import.")
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            summary = upload_import(by=request.user, **form.cleaned_data)  # type: ignore[arg-type]
        except (ReportError, PermissionDenied) as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            form.add_error(None, " ".join(exc.messages))
        except Exception:
            # Importers roll back on any error, so the page can say so; what went wrong is for the log.
            name = form.cleaned_data["file"].name
            logger.exception("import of %s failed unexpectedly", name)
            form.add_error(None, f"{name} could not be imported (internal error); nothing was written.")
        else:
            messages.success(request, summary)
            return redirect("dossiers:import_upload")
    context = {"form": form, "runs": import_runs_for(request.user)}
    return render(request, "dossiers/import_upload.html", context)
