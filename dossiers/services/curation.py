"""Curator edits of candidates and dossiers, guarded by an optimistic version check.

Two people may open the same candidate; whoever saves second gets `StaleEdit` and nothing is written.
Each successful edit raises `version`. The audit trail of these edits is written by the PostgreSQL row
trigger of `reviews` (migration 0002), which reads the acting user from `reviews.actor_id`: `dossiers`
never imports `reviews`, so this module only names the actor for the trigger (SQLite has no trigger).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction
from django.utils import timezone

from dossiers.models import Candidate, Dossier, Drug, Market
from dossiers.permissions import can_curate
from dossiers.services.signed_content import signed_content_changed

# What a curator may edit; status moves only through the review workflow, version only here.
CANDIDATE_FIELDS = (
    "disease",
    "title",
    "txgnn_score",
    "txgnn_rank",
    "source",
    "confidence",
    "evidence_level",
    "decision_stage",
    "recommended_decision",
    "summary",
    "rationale",
    "trials_note",
    "publications_note",
    "conclusion_rationale",
    "trials_reported_total",
    "trials_total_capped",
    "publications_reported_total",
    "publications_total_capped",
)
# Set by the reviewers and the approver once a candidate is in review; a curator sets them only before.
DECISION_FIELDS = ("evidence_level", "decision_stage", "recommended_decision")
BEFORE_REVIEW = frozenset(
    {
        Candidate.Status.PREDICTED,
        Candidate.Status.DEPRIORITIZED,
        Candidate.Status.TRIAGED,
        Candidate.Status.IN_CURATION,
    }
)
DOSSIER_FIELDS = (
    "title",
    "market_status",
    "registration_count",
    "market_information",
    "reported_indication_count",
    "cytotoxicity_classification",
    "myelosuppression_risk",
    "emetogenicity",
    "monitoring_items",
    "handling_protection",
    "cytotoxicity_note",
    "interaction_total",
    "safety_note",
    "disclaimer",
)


class StaleEdit(ValidationError):
    """The row changed since the editor loaded it; their changes were not saved."""

    def __init__(
        self, *, what: str, current_version: int, expected_version: int, changed_at: Any, who: str = ""
    ) -> None:
        when = timezone.localtime(changed_at).strftime("%Y-%m-%d %H:%M:%S %Z") if changed_at else "an unknown time"
        super().__init__(
            f"{who or 'Someone else'} changed this {what} at {when} (version {current_version}; you loaded "
            f"version {expected_version}). Reload it — your changes were not saved.",
            code="stale",
        )
        self.current_version = current_version
        self.expected_version = expected_version


def curatable_candidate_fields(candidate: Candidate) -> tuple[str, ...]:
    """The candidate fields a curator may edit in the candidate's current status."""
    if candidate.status in BEFORE_REVIEW:
        return CANDIDATE_FIELDS
    return tuple(name for name in CANDIDATE_FIELDS if name not in DECISION_FIELDS)


def name_actor(*, by: User | None, reason: str = "") -> None:
    """Tell the PostgreSQL audit trigger who writes in this transaction, and why."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('reviews.actor_id', %s, true)", [str(by.pk) if by else ""])
        cursor.execute("SELECT set_config('reviews.reason', %s, true)", [reason])


@transaction.atomic
def candidate_update(
    *, candidate_id: int, by: User, expected_version: int, reason: str = "", **fields: Any
) -> Candidate:
    """Edit a candidate's curated content if nobody saved it since `expected_version`; raise the version."""
    candidate = _lock(Candidate.objects.select_related("dossier__market"), candidate_id, "Candidate")
    if not can_curate(by, candidate.dossier.market):
        raise PermissionDenied("Only a curator of this candidate's market can edit it.")
    _check_version(candidate, expected_version, "candidate")
    _check_names(fields, allowed=curatable_candidate_fields(candidate), what="candidate", status=candidate.status)
    _save(candidate, by=by, reason=reason, fields=fields)
    signed_content_changed(candidate_ids=[candidate.pk], by=by)
    return candidate


@transaction.atomic
def dossier_update(*, dossier_id: int, by: User, expected_version: int, reason: str = "", **fields: Any) -> Dossier:
    """Edit a dossier's market, cytotoxicity and safety profile if nobody saved it since `expected_version`."""
    dossier = _lock(Dossier.objects.select_related("market", "drug"), dossier_id, "Dossier")
    if not can_curate(by, dossier.market):
        raise PermissionDenied("Only a curator of this dossier's market can edit it.")
    _check_version(dossier, expected_version, "dossier")
    _check_names(fields, allowed=DOSSIER_FIELDS, what="dossier")
    return _save(dossier, by=by, reason=reason, fields=fields)


@transaction.atomic
def candidate_create(*, dossier_id: int, by: User, disease: str, **fields: Any) -> Candidate:
    """Add a predicted indication to a dossier by hand (most come from `candidate_promote`)."""
    dossier = Dossier.objects.select_related("market").filter(pk=dossier_id).first()
    if dossier is None:
        raise ValidationError(f"Dossier {dossier_id} does not exist.")
    if not can_curate(by, dossier.market):
        raise PermissionDenied("Only a curator of this dossier's market can add candidates to it.")
    _check_names(fields, allowed=CANDIDATE_FIELDS, what="candidate")
    candidate = Candidate(dossier=dossier, disease=disease, **fields)
    return _insert(candidate, by=by)


@transaction.atomic
def dossier_create(*, drug_id: int, market_id: int, by: User, **fields: Any) -> Dossier:
    """Open a dossier for a drug in a market."""
    market = Market.objects.filter(pk=market_id).first()
    drug = Drug.objects.filter(pk=drug_id).first()
    if market is None or drug is None:
        raise ValidationError(f"{'Market' if market is None else 'Drug'} does not exist.")
    if not can_curate(by, market):
        raise PermissionDenied("Only a curator of this market can open dossiers in it.")
    _check_names(fields, allowed=DOSSIER_FIELDS, what="dossier")
    return _insert(Dossier(drug=drug, market=market, **fields), by=by)


def _lock(queryset: models.QuerySet[Any], pk: int, label: str) -> Any:
    found = queryset.select_for_update(of=("self",)).filter(pk=pk).first()
    if found is None:
        raise ValidationError(f"{label} {pk} does not exist.")
    return found


def _check_version(row: Candidate | Dossier, expected_version: int, what: str) -> None:
    if int(expected_version) != row.version:
        raise StaleEdit(
            what=what, current_version=row.version, expected_version=int(expected_version), changed_at=row.updated_at
        )


def _check_names(fields: dict[str, Any], *, allowed: tuple[str, ...], what: str, status: str = "") -> None:
    refused = sorted(set(fields) - set(allowed))
    if not refused:
        return
    if status and set(refused) <= set(DECISION_FIELDS):
        raise ValidationError(
            f"{', '.join(refused)} of a candidate that is {status} are set by its reviewers and approver, "
            "not by curation."
        )
    raise ValidationError(f"Cannot edit {', '.join(refused)} of a {what}; editable: {', '.join(allowed)}.")


def _save(row: Candidate | Dossier, *, by: User, reason: str, fields: dict[str, Any]) -> Any:
    for name, value in fields.items():
        setattr(row, name, value)
    # Keep the parent keys in the check so a duplicate (dossier, disease) is a clear error, not an IntegrityError.
    keep = {*fields, "dossier", "drug", "market"}
    row.full_clean(exclude=[f.name for f in row._meta.fields if f.name not in keep])
    name_actor(by=by, reason=reason)
    row.version += 1
    row.save(update_fields=[*fields, "version", "updated_at"])
    return row


def _insert(row: Candidate | Dossier, *, by: User) -> Any:
    row.full_clean()
    name_actor(by=by)
    row.save()
    return row
