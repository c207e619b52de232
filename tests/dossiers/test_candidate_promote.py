"""Promoting a raw prediction to a candidate: creates or links, once, and only for the market's curators."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from dossiers.models import Candidate, Dossier, Prediction
from dossiers.services.candidates import candidate_promote
from portal.roles import Role
from tests.factories import make_candidate, make_dossier, make_drug, make_market, make_user

pytestmark = pytest.mark.django_db


def _prediction(disease: str = "myeloid leukemia", **kwargs) -> Prediction:
    drug = kwargs.pop("drug", None) or make_drug("Lenalidomide")
    market = kwargs.pop("market", None) or make_market()
    kwargs.setdefault("confidence", "high")
    return Prediction.objects.create(
        market=market,
        drug=drug,
        disease=disease,
        score=0.9949,
        rank=7,
        source="DL",
        imported_at=timezone.now(),
        **kwargs,
    )


def test_promotion_creates_the_dossier_and_candidate_from_the_prediction() -> None:
    prediction = _prediction()
    candidate = candidate_promote(prediction_id=prediction.pk, by=None)
    assert (candidate.disease, candidate.txgnn_score, candidate.txgnn_rank, candidate.source) == (
        "myeloid leukemia",
        0.9949,
        7,
        "DL",
    )
    assert candidate.prediction_id == prediction.pk and candidate.status == "predicted"
    assert Dossier.objects.get().pk == candidate.dossier_id
    candidate.refresh_from_db()
    assert candidate.confidence == Candidate.Confidence.HIGH


@pytest.mark.parametrize(("given", "copied"), [("Medium", "medium"), (" LOW ", "low"), ("very high", ""), ("", "")])
def test_promotion_copies_a_known_confidence_and_leaves_an_unknown_one_blank(given: str, copied: str) -> None:
    prediction = _prediction(confidence=given)
    candidate = candidate_promote(prediction_id=prediction.pk, by=None)
    candidate.refresh_from_db()
    assert candidate.confidence == copied


def test_promoting_twice_changes_nothing() -> None:
    prediction = _prediction()
    first = candidate_promote(prediction_id=prediction.pk, by=None)
    second = candidate_promote(prediction_id=prediction.pk, by=None)
    assert first.pk == second.pk and Candidate.objects.count() == 1


def test_an_imported_candidate_is_linked_whatever_the_case_of_its_disease() -> None:
    prediction = _prediction()
    imported = make_candidate(make_dossier(prediction.drug, prediction.market), "Myeloid Leukemia", txgnn_score=0.99)
    candidate = candidate_promote(prediction_id=prediction.pk, by=None)
    assert candidate.pk == imported.pk and Candidate.objects.count() == 1
    imported.refresh_from_db()
    assert imported.prediction_id == prediction.pk and imported.disease == "Myeloid Leukemia"
    assert imported.confidence == "high"  # filled in, as the rank and source are when the report had none


def test_linking_keeps_the_confidence_an_imported_candidate_has() -> None:
    prediction = _prediction()
    imported = make_candidate(make_dossier(prediction.drug, prediction.market), "myeloid leukemia", confidence="low")
    candidate_promote(prediction_id=prediction.pk, by=None)
    imported.refresh_from_db()
    assert (imported.prediction_id, imported.confidence) == (prediction.pk, "low")


def test_only_a_curator_of_the_market_may_promote() -> None:
    india, canada = make_market(), make_market("CA", "Canada")
    prediction = _prediction(market=india)
    for user in (
        make_user("viewer", Role.VIEWER, markets=[india]),
        make_user("reviewer", Role.REVIEWER, markets=[india]),
        make_user("foreign", Role.CURATOR, markets=[canada]),
    ):
        with pytest.raises(PermissionDenied):
            candidate_promote(prediction_id=prediction.pk, by=user)
    assert not Candidate.objects.exists()
    curator = make_user("curator", Role.CURATOR, markets=[india])
    assert candidate_promote(prediction_id=prediction.pk, by=curator).dossier.market == india
