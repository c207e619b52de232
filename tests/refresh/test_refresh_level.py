"""The computed evidence level is current after every refresh, and a trial's design change regrades it."""

from __future__ import annotations

import json

import pytest

from dossiers.models import Candidate, CandidateTrial, ClinicalTrial, CurationStatus
from dossiers.services import refresh
from tests.factories import make_candidate
from tests.fakeapi import CTGOV, FakeApi, handmade, json_reply
from tests.refresh.seedfake import route_seed
from tests.refresh.test_refresh_service import refresh_all

pytestmark = pytest.mark.django_db


def test_a_stale_level_is_recomputed_by_the_next_refresh_even_when_nothing_changed(
    seed: Candidate, fakeapi: FakeApi
) -> None:
    route_seed(fakeapi)
    refresh_all(seed)
    # curation written around the service (an import, an admin edit) left the stored level stale
    Candidate.objects.filter(pk=seed.pk).update(computed_evidence_level="L4", evidence_level_reasons=["stale"])

    refresh_all(seed)  # nothing new or changed

    seed.refresh_from_db()
    assert seed.computed_evidence_level == "L1" and "stale" not in seed.evidence_level_reasons


def test_the_registry_naming_a_phase_3_randomized_regrades_every_candidate_including_it(
    seed: Candidate, fakeapi: FakeApi
) -> None:
    route_seed(fakeapi)
    page1 = json.loads(handmade("ctgov-v2-studies-lenalidomide-aml-page1.handmade.json").read_text())
    page1["studies"][0]["protocolSection"]["designModule"]["phases"] = ["PHASE3"]
    fakeapi.route(CTGOV, json_reply(page1))
    trial = ClinicalTrial.objects.get(nct_id="NCT01358734")
    ClinicalTrial.objects.filter(pk=trial.pk).update(phase="Phase 3")  # imported, allocation unknown
    other = make_candidate(seed.dossier, disease="Myelodysplastic syndrome")
    CandidateTrial.objects.create(candidate=other, trial=trial, curation_status=CurationStatus.INCLUDED)
    refresh.evidence_level_recompute(candidate=other)
    assert other.evidence_level_reasons == ["NCT01358734: Phase 3 trial, allocation not recorded (Completed) → L2"]

    refresh_all(seed)  # the seed's refresh reads the trial's allocation: RANDOMIZED

    other.refresh_from_db()
    assert ClinicalTrial.objects.get(pk=trial.pk).allocation == "RANDOMIZED"
    assert other.computed_evidence_level == "L1"
    assert other.evidence_level_reasons == ["NCT01358734: Phase 3 randomized trial (Completed) → L1"]


def test_a_randomized_phase_3_paper_keeps_both_facts_in_its_study_type() -> None:
    types = ["Clinical Trial, Phase III", "Journal Article", "Randomized Controlled Trial"]

    assert refresh.study_type(types) == "Randomized Controlled Trial, Phase III"
    assert refresh.study_type([*types, "Meta-Analysis"]) == "Meta-Analysis"
    assert refresh.study_type(["Clinical Trial, Phase III"]) == "Clinical Trial, Phase III"
