"""Tell the review side that content a signature may cover has changed; `dossiers` never imports `reviews`.

After commit, the reviews task `reviews.signatures_check` (sent by name) compares each decided candidate's
content with its valid signature and voids a signature whose content changed, sending the candidate back
for sign-off. Call this from every dossiers write that can touch signed content: candidate fields, included
evidence links, guardrail conditions, the dossier's data gaps.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import transaction

from dossiers.models import Candidate

DECIDED = (Candidate.Status.SIGNED_OFF, Candidate.Status.CLEARED)


def signed_content_changed(*, candidate_ids: Iterable[int], by: User | None = None) -> list[int]:
    """Queue a signature check of those candidates that are decided; return their ids."""
    decided = Candidate.objects.filter(pk__in=list(candidate_ids), status__in=DECIDED)
    ids = sorted(decided.values_list("pk", flat=True))
    if ids:
        by_id = by.pk if by is not None else None
        # robust: a broker outage must not fail the committed edit; the hourly sweep catches what was missed
        transaction.on_commit(lambda: _send(ids, by_id), robust=True)
    return ids


def dossier_content_changed(*, dossier_id: int, by: User | None = None) -> list[int]:
    """A dossier-wide edit (data gaps): every candidate of the dossier."""
    return signed_content_changed(
        candidate_ids=Candidate.objects.filter(dossier_id=dossier_id).values_list("pk", flat=True), by=by
    )


def _send(candidate_ids: list[int], by_id: int | None) -> None:
    from dossiers.tasks import send_signature_check  # tasks import the services; the import is deferred

    send_signature_check(candidate_ids, by_id)
