"""Workflow pages: the candidate page with its actions, the audit CSV, the dashboard and the market board.

Each POST view looks the candidate up through an access-checked selector (invisible → 404), validates
its form and calls one service, which checks the permission again (not allowed → 403) and the state.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from typing import Any

from django import forms as django_forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from dossiers.models import Candidate, GuardrailCondition
from dossiers.report import DEFAULT_DISCLAIMER
from dossiers.selectors import (
    candidate_get_for,
    dossier_get_for,
    dossier_page,
    interactions_by_severity,
    markets_visible_to,
)
from dossiers.views import EXPORT_LABELS
from reviews import forms, services
from reviews.permissions import allowed_actions
from reviews.selectors import (
    WorkflowPage,
    audit_csv_rows,
    candidate_workflow,
    dashboard_for,
    eligible_reviewers,
    market_board,
)

Form = django_forms.Form
# action (a key of reviews.models.TRANSITIONS) -> the form its panel shows
FORMS: dict[str, type[Form]] = {
    "triage": forms.ConfirmForm,
    "deprioritize": forms.DeprioritizeForm,
    "revive": forms.ReviveForm,
    "start_curation": forms.ConfirmForm,
    "send_to_review": forms.ConfirmForm,
    "review_submit": forms.ReviewForm,
    "conflict_resolve": forms.ConflictResolveForm,
    "sign_off": forms.SignOffForm,
    "reopen": forms.ReopenForm,
    "comment": forms.CommentForm,
}


def _user(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]  # login_required


def _blank_form(action: str, candidate: Candidate) -> Form:
    auto_id = f"{action}-%s"  # several forms share a page: keep their element ids apart
    if action == "review_assign":
        return forms.AssignForm(reviewers=eligible_reviewers(candidate), auto_id=auto_id)
    if action == "sign_off":
        return forms.SignOffForm(initial={"decision": candidate.recommended_decision or None}, auto_id=auto_id)
    return FORMS[action](auto_id=auto_id)


def _condition_rows(workflow: WorkflowPage, bound: dict[str, Form]) -> list[tuple[GuardrailCondition, Any, Any]]:
    """Each condition with its "met" and "waive" forms, when the user may use them."""
    waive = "condition_waive" in workflow.actions
    rows = []
    for c in workflow.conditions:
        is_open = c.status == GuardrailCondition.Status.OPEN
        met_form = waive_form = None
        if is_open and c.pk in workflow.markable_conditions:
            met_form = bound.get(f"met-{c.pk}") or forms.ConditionMetForm(auto_id=f"met{c.pk}-%s")
        if is_open and waive:
            waive_form = bound.get(f"waive-{c.pk}") or forms.ConditionWaiveForm(auto_id=f"waive{c.pk}-%s")
        rows.append((c, met_form, waive_form))
    return rows


def _render_candidate(
    request: HttpRequest, candidate: Candidate, bound: dict[str, Any], status: int = 200
) -> HttpResponse:
    """The dossier page of the candidate with the workflow panel; `bound` holds forms to show with errors."""
    user = _user(request)
    page = dossier_page(dossier_get_for(user, candidate.dossier_id), candidate)
    workflow = candidate_workflow(user, page.candidate or candidate)
    action_forms = {a: bound.get(a) or _blank_form(a, candidate) for a in workflow.actions if a in FORMS}
    if "review_assign" in workflow.actions:
        action_forms["review_assign"] = bound.get("review_assign") or _blank_form("review_assign", candidate)
    groups = interactions_by_severity(page.dossier)
    context = {
        "page": page,
        "dossier": page.dossier,
        "candidate": page.candidate,
        "interaction_groups": groups,
        "named_interactions": sum(len(group.interactions) for group in groups),
        "export_formats": EXPORT_LABELS,
        "default_disclaimer": DEFAULT_DISCLAIMER,
        "workflow": workflow,
        "forms": action_forms,
        "condition_rows": _condition_rows(workflow, bound.get("conditions", {})),
    }
    return render(request, "reviews/candidate_detail.html", context, status=status)


@login_required
@require_GET
def candidate_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The dossier report of one candidate with its status, actions, reviews, signatures and timeline."""
    return _render_candidate(request, candidate_get_for(request.user, pk), {})


def _add_errors(form: Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


def _act(
    request: HttpRequest,
    candidate: Candidate,
    action: str,
    form: Form,
    perform: Callable[[dict[str, Any]], str],
    *,
    slot: str | None = None,
) -> HttpResponse:
    """Validate, call the service, report; a refused or invalid request shows the page again with errors."""
    if form.is_valid():
        try:
            message = perform(form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
            if action not in allowed_actions(request.user, candidate):
                # the state moved on (a double click, someone else first): the form is gone, say it on top
                messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, message)
            return redirect(candidate.get_absolute_url())
    elif action not in allowed_actions(request.user, candidate):
        raise PermissionDenied("You may not do that on this candidate now.")
    bound: dict[str, Any] = {action: form} if slot is None else {"conditions": {slot: form}}
    return _render_candidate(request, candidate, bound, status=400)


def _candidate(request: HttpRequest, pk: int) -> Candidate:
    return candidate_get_for(request.user, pk)


@login_required
@require_POST
def triage(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.candidate_triage(candidate_id=pk, by=_user(request))
        return "Triaged: the candidate is accepted for curation."

    return _act(request, candidate, "triage", forms.ConfirmForm(request.POST), perform)


@login_required
@require_POST
def deprioritize(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.candidate_deprioritize(candidate_id=pk, by=_user(request), **data)
        return "Deprioritized."

    return _act(request, candidate, "deprioritize", forms.DeprioritizeForm(request.POST), perform)


@login_required
@require_POST
def revive(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.candidate_revive(candidate_id=pk, by=_user(request), reason=data["reason"])
        return "Revived: the candidate is back among the predictions."

    return _act(request, candidate, "revive", forms.ReviveForm(request.POST), perform)


@login_required
@require_POST
def start_curation(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.candidate_start_curation(candidate_id=pk, by=_user(request))
        return "Curation started; you are recorded as this round's curator."

    return _act(request, candidate, "start_curation", forms.ConfirmForm(request.POST), perform)


@login_required
@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)
    form = forms.AssignForm(request.POST, reviewers=eligible_reviewers(candidate))

    def perform(data: dict[str, Any]) -> str:
        due: date | None = data["due_date"]
        created = services.review_assign(candidate_id=pk, by=_user(request), reviewers=data["reviewers"], due_date=due)
        return f"{len(created)} reviewer(s) assigned."

    return _act(request, candidate, "review_assign", form, perform)


@login_required
@require_POST
def send_to_review(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.candidate_send_to_review(candidate_id=pk, by=_user(request))
        return "Sent to independent review."

    return _act(request, candidate, "send_to_review", forms.ConfirmForm(request.POST), perform)


@login_required
@require_POST
def review(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.review_submit(candidate_id=pk, by=_user(request), **data)
        return "Your review is recorded. Other reviews become visible once every reviewer has submitted."

    return _act(request, candidate, "review_submit", forms.ReviewForm(request.POST), perform)


@login_required
@require_POST
def resolve(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.conflict_resolve(candidate_id=pk, by=_user(request), **data)
        return "Conflict resolved; the decision awaits sign-off."

    return _act(request, candidate, "conflict_resolve", forms.ConflictResolveForm(request.POST), perform)


@login_required
@require_POST
def sign_off(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        signoff = services.signoff_create(candidate_id=pk, by=_user(request), **data)
        return f"Signed: {signoff.meaning}."

    return _act(request, candidate, "sign_off", forms.SignOffForm(request.POST), perform)


def _condition(request: HttpRequest, pk: int, condition_pk: int) -> tuple[Candidate, GuardrailCondition]:
    candidate = _candidate(request, pk)
    return candidate, get_object_or_404(GuardrailCondition, pk=condition_pk, candidate=candidate)


@login_required
@require_POST
def condition_met(request: HttpRequest, pk: int, condition_pk: int) -> HttpResponse:
    candidate, condition = _condition(request, pk, condition_pk)

    def perform(data: dict[str, Any]) -> str:
        services.condition_mark_met(condition_id=condition.pk, by=_user(request), note=data["note"])
        return f"Condition met: {condition.title}."

    form = forms.ConditionMetForm(request.POST)
    return _act(request, candidate, "condition_mark_met", form, perform, slot=f"met-{condition.pk}")


@login_required
@require_POST
def condition_waive(request: HttpRequest, pk: int, condition_pk: int) -> HttpResponse:
    candidate, condition = _condition(request, pk, condition_pk)

    def perform(data: dict[str, Any]) -> str:
        services.condition_waive(condition_id=condition.pk, by=_user(request), justification=data["justification"])
        return f"Condition waived: {condition.title}."

    form = forms.ConditionWaiveForm(request.POST)
    return _act(request, candidate, "condition_waive", form, perform, slot=f"waive-{condition.pk}")


@login_required
@require_POST
def reopen(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        round_ = services.candidate_reopen(candidate_id=pk, by=_user(request), reason=data["reason"])
        return f"Reopened: review round {round_.number} has started."

    return _act(request, candidate, "reopen", forms.ReopenForm(request.POST), perform)


@login_required
@require_POST
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        posted = services.comment_add(candidate_id=pk, by=_user(request), body=data["body"])
        names = ", ".join(f"@{u.get_username()}" for u in posted.mentions.all())
        return f"Comment posted; notified {names}." if names else "Comment posted."

    return _act(request, candidate, "comment", forms.CommentForm(request.POST), perform)


@login_required
@require_POST
def watch(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.watch(candidate_id=pk, by=_user(request))
        return "You are watching this candidate."

    return _act(request, candidate, "watch", forms.ConfirmForm(request.POST), perform)


@login_required
@require_POST
def unwatch(request: HttpRequest, pk: int) -> HttpResponse:
    candidate = _candidate(request, pk)

    def perform(data: dict[str, Any]) -> str:
        services.unwatch(candidate_id=pk, by=_user(request))
        return "You no longer watch this candidate."

    return _act(request, candidate, "watch", forms.ConfirmForm(request.POST), perform)


@login_required
@require_GET
def audit_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The candidate's audit trail as CSV (votes never appear in it: review rows say only that one came in)."""
    candidate = _candidate(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="candidate-{candidate.pk}-audit.csv"'
    csv.writer(response).writerows(audit_csv_rows(candidate))
    return response


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """My assignments, what awaits my signature, overdue reviews, conflicts and recent changes."""
    return render(request, "reviews/dashboard.html", {"dash": dashboard_for(_user(request))})


@login_required
@require_GET
def board(request: HttpRequest, code: str) -> HttpResponse:
    """A market's pipeline: how many candidates are in each status, and the latest of each."""
    return render(request, "reviews/board.html", {"board": market_board(request.user, code)})


@login_required
@require_GET
def boards(request: HttpRequest) -> HttpResponse:
    """The pipeline boards the user may open; straight to the board when there is only one."""
    markets = list(markets_visible_to(request.user).order_by("code"))
    if len(markets) == 1:
        return redirect("reviews:board", code=markets[0].code)
    return render(request, "reviews/boards.html", {"markets": markets})
