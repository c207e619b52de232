"""Trials and papers are searched by the drug's normalised name and synonyms; normalisation runs first."""

from __future__ import annotations

import uuid

import pytest

from dossiers.models import Candidate, Drug, RefreshRun
from dossiers.services import refresh
from tests.factories import make_drug
from tests.fakeapi import APPROXIMATE, CTGOV, EUTILS, RXCUI, FakeApi, file_reply, handmade
from tests.refresh.seedfake import route_seed
from tests.refresh.test_refresh_service import runs

pytestmark = pytest.mark.django_db


def test_a_misspelt_drug_is_normalised_before_its_candidate_is_searched(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-no-match.handmade.json")))
    Drug.objects.filter(pk=seed.dossier.drug_id).update(name="Lenalidomid")  # as a report might spell it
    request_id = uuid.uuid4()

    refresh.candidate_refresh(candidate_id=seed.pk, request_id=request_id)  # the candidate's task came first

    drug = Drug.objects.get(pk=seed.dossier.drug_id)
    assert (drug.rxcui, drug.rxnorm_name) == ("342369", "lenalidomide")
    log = runs(request_id)
    assert log["rxnav"].drug_id == drug.pk and log["rxnav"].status == RefreshRun.Status.SUCCESS
    assert log["rxnav"].params == {"term": "Lenalidomid", "maxEntries": 1, "matched": "lenalidomide"}
    assert APPROXIMATE in log["rxnav"].query
    (trials_request, *_) = fakeapi.seen(CTGOV)
    assert trials_request.params["query.intr"] == "lenalidomide OR Lenalidomid OR Revlimid"
    assert log["clinicaltrials"].params["query.intr"] == "lenalidomide OR Lenalidomid OR Revlimid"
    assert "query.intr=lenalidomide+OR+Lenalidomid+OR+Revlimid" in log["clinicaltrials"].query
    (papers_request,) = fakeapi.seen(f"{EUTILS}/esearch.fcgi")
    term = "((lenalidomide) OR (Lenalidomid) OR (Revlimid)) AND (Myeloid Leukemia)"
    assert papers_request.params["term"] == term and log["pubmed"].params["term"] == term
    # the drug's own task of the request finds the normalisation done
    rxnav_requests = len(fakeapi.seen(RXCUI)) + len(fakeapi.seen(APPROXIMATE))
    refresh.drug_refresh(drug_id=drug.pk, request_id=request_id)
    assert len(fakeapi.seen(RXCUI)) + len(fakeapi.seen(APPROXIMATE)) == rxnav_requests
    assert runs(request_id)["openfda"].status == RefreshRun.Status.SUCCESS


def test_a_drug_already_normalised_is_not_asked_again_by_its_candidates(seed: Candidate, fakeapi: FakeApi) -> None:
    route_seed(fakeapi)
    Drug.objects.filter(pk=seed.dossier.drug_id).update(rxcui="342369", rxnorm_name="lenalidomide")

    refresh.candidate_refresh(candidate_id=seed.pk, request_id=uuid.uuid4())

    assert fakeapi.seen(RXCUI) == [] and fakeapi.seen(APPROXIMATE) == []
    assert fakeapi.seen(CTGOV)[0].params["query.intr"] == "lenalidomide OR Revlimid"  # the same name once


@pytest.mark.parametrize(
    ("rxnorm_name", "name", "synonyms", "expected"),
    [
        ("", "Aspirin", [], ["Aspirin"]),
        ("aspirin", "Aspirin", ["ASA", "Bayer Aspirin", "aspirin"], ["aspirin", "ASA", "Bayer Aspirin"]),
        (
            "",
            'Tretinoin "ATRA"',
            ["all-trans (retinoic) acid", "5F", 42],
            ["Tretinoin ATRA", "all-trans retinoic acid"],
        ),
        (
            "",
            "Metformin",
            ["A", "B", "Glucophage", "Fortamet", "Glumetza", "Riomet", "Glucophage XR"],
            ["Metformin", "Glucophage", "Fortamet", "Glumetza", "Riomet"],
        ),
    ],
)
def test_search_names(rxnorm_name: str, name: str, synonyms: list, expected: list[str]) -> None:
    drug = make_drug(name, rxnorm_name=rxnorm_name, synonyms=synonyms)

    assert refresh.search_names(drug) == expected
