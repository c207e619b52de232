"""Promote raw model predictions to candidates that a team will triage and review."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from dossiers.models import Candidate, Dossier, Prediction
from dossiers.permissions import can_curate


@transaction.atomic
def candidate_promote(*, prediction_id: int, by: User | None) -> Candidate:
    """Create the candidate for a prediction (and its dossier), or link the existing one; idempotent.

    `by=None` is for trusted callers such as the demo loader and management commands.
    """
    prediction = Prediction.objects.select_related("drug", "market").get(pk=prediction_id)
    if by is not None and not can_curate(by, prediction.market):
        raise PermissionDenied("Only a curator of this market can promote its predictions.")
    dossier, _ = Dossier.objects.get_or_create(drug=prediction.drug, market=prediction.market)
    # Diseases match case-insensitively: a report says "Myeloid Leukemia", the model "myeloid leukemia".
    candidate = (
        Candidate.objects.select_for_update().filter(dossier=dossier, disease__iexact=prediction.disease).first()
    )
    created = candidate is None
    if candidate is None:
        candidate = Candidate.objects.create(
            dossier=dossier,
            disease=prediction.disease,
            prediction=prediction,
            txgnn_score=prediction.score,
            txgnn_rank=prediction.rank,
            source=prediction.source,
            confidence=_confidence(prediction.confidence),
        )
    if not created and candidate.prediction_id is None:
        candidate.prediction = prediction
        candidate.txgnn_rank = candidate.txgnn_rank or prediction.rank
        candidate.source = candidate.source or prediction.source
        candidate.confidence = candidate.confidence or _confidence(prediction.confidence)
        candidate.save(update_fields=["prediction", "txgnn_rank", "source", "confidence", "updated_at"])
    return candidate


def _confidence(raw: str) -> str:
    """The candidate's confidence bucket for a prediction's free-text one; blank when it names none of them."""
    value = raw.strip().lower()
    return value if value in Candidate.Confidence.values else ""
