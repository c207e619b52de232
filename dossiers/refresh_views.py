"""HTML actions of the evidence refresh panel: refresh, mark as reviewed, include or exclude a suggestion."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from dossiers.models import CandidatePublication, CandidateTrial
from dossiers.selectors import candidate_get_for, candidates_visible_to
from dossiers.services import refresh


def _back(candidate_id: int) -> HttpResponse:
    return redirect(reverse("dossiers:candidate_detail", args=[candidate_id]) + "#evidence-refresh")


@login_required
@require_POST
def candidate_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a refresh of the candidate's evidence (curators of its market)."""
    candidate = candidate_get_for(request.user, pk)
    user = request.user
    assert isinstance(user, User)
    refresh.candidate_refresh_request(candidate_id=candidate.pk, by=user)
    messages.success(request, "Evidence refresh queued; the query log below shows its progress.")
    return _back(candidate.pk)


@login_required
@require_POST
def candidate_evidence_seen(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark the candidate's evidence changes as reviewed by the user."""
    candidate = candidate_get_for(request.user, pk)
    user = request.user
    assert isinstance(user, User)
    refresh.candidate_mark_seen(candidate_id=candidate.pk, by=user)
    return _back(candidate.pk)


@login_required
@require_POST
def evidence_curate(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """Include or exclude a suggested trial or publication with its grade."""
    visible = candidates_visible_to(request.user)
    links = {
        "trial": CandidateTrial.objects.filter(pk=pk, candidate__in=visible).values_list("candidate_id", flat=True),
        "publication": CandidatePublication.objects.filter(pk=pk, candidate__in=visible).values_list(
            "candidate_id", flat=True
        ),
    }
    candidate_id = links[kind].first() if kind in links else None
    if candidate_id is None:
        raise Http404("No such evidence link.")
    user = request.user
    assert isinstance(user, User)
    try:
        refresh.evidence_curate(
            kind=kind,
            link_id=pk,
            by=user,
            decision=request.POST.get("decision", ""),
            grade=request.POST.get("grade", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _back(candidate_id)
