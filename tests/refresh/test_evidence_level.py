"""The documented evidence level rules: each rule, the best level wins, only included evidence counts."""

from __future__ import annotations

import pytest

from dossiers.evidence_level import evidence_level_compute, publication_level, trial_level, trial_phase_numbers
from dossiers.models import CandidatePublication, CandidateTrial, CurationStatus
from tests.factories import make_candidate, make_publication, make_trial

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("phase", "status", "allocation", "level"),
    [
        ("Phase 3", "Completed", "RANDOMIZED", "L1"),
        ("Phase 2/3", "Recruiting", "RANDOMIZED", "L1"),
        ("PHASE2|PHASE3", "Completed", "RANDOMIZED", "L1"),
        ("Phase 3", "Completed", "NON_RANDOMIZED", "L2"),  # not an RCT
        ("Phase 3", "Completed", "NA", "L2"),  # one arm
        ("Phase 3", "Completed", "", "L2"),  # allocation not known (imported, not refreshed yet)
        ("Phase 2", "Completed", "RANDOMIZED", "L2"),
        ("Phase 2", "Completed", "", "L2"),
        ("Phase 1/2", "Terminated", "", "L2"),
        ("Phase 4", "Completed", "", "L2"),
        ("Phase 1", "Completed", "RANDOMIZED", "L3"),
        ("Early Phase 1", "Completed", "", "L3"),
        ("N/A", "Completed", "", "L3"),
        ("", "Completed", "", "L3"),
        ("Phase 3", "Withdrawn", "RANDOMIZED", None),
    ],
)
def test_trial_rules(phase: str, status: str, allocation: str, level: str | None) -> None:
    assert trial_level(make_trial(phase=phase, status=status, allocation=allocation)) == level


def test_phase_3_reasons_say_whether_the_trial_is_randomized() -> None:
    candidate = make_candidate()
    for nct, allocation in (("NCT00000011", "RANDOMIZED"), ("NCT00000012", ""), ("NCT00000013", "NA")):
        trial = make_trial(nct, phase="Phase 3", allocation=allocation)
        CandidateTrial.objects.create(candidate=candidate, trial=trial)

    result = evidence_level_compute(candidate)

    assert (result.level, result.reasons) == ("L1", ["NCT00000011: Phase 3 randomized trial (Completed) → L1"])
    CandidateTrial.objects.filter(trial__nct_id="NCT00000011").delete()
    assert evidence_level_compute(candidate).reasons == [
        "NCT00000012: Phase 3 trial, allocation not recorded (Completed) → L2",
        "NCT00000013: Phase 3 trial, not randomized (Completed) → L2",
    ]


@pytest.mark.parametrize(
    ("study_type", "tier", "level"),
    [
        ("Meta-Analysis", None, "L1"),
        ("Systematic Review", None, "L1"),
        ("Clinical Trial, Phase III", None, "L2"),  # Phase 3 but not shown randomized
        ("Randomized Controlled Trial, Phase III", None, "L1"),
        ("Phase 3 RCT", None, "L1"),
        ("Randomized Controlled Trial", None, "L2"),
        ("Clinical Trial, Phase II", None, "L2"),
        ("Clinical Trial, Phase I", None, "L3"),
        ("Cohort study", None, "L3"),
        ("Case Reports", None, "L4"),
        ("Review", None, "L4"),
        ("Preclinical", None, "L4"),
        ("Direct comparison", 1, "L2"),  # "rct" inside a word does not count; the tier decides
        ("", 2, "L3"),
        ("", None, "L4"),
    ],
)
def test_publication_rules(study_type: str, tier: int | None, level: str) -> None:
    link = CandidatePublication(publication=make_publication(study_type=study_type), tier=tier)
    assert publication_level(link) == level


def test_phase_numbers() -> None:
    assert trial_phase_numbers("Phase 2/3") == {2, 3}
    assert trial_phase_numbers("N/A") == set()


def test_no_included_evidence_is_prediction_only() -> None:
    candidate = make_candidate()
    CandidateTrial.objects.create(
        candidate=candidate, trial=make_trial(phase="Phase 3"), curation_status=CurationStatus.SUGGESTED
    )
    CandidateTrial.objects.create(
        candidate=candidate, trial=make_trial(phase="Phase 3"), curation_status=CurationStatus.EXCLUDED
    )

    result = evidence_level_compute(candidate)

    assert (result.level, result.reasons) == ("L5", ["no included trials or publications: prediction only → L5"])


def test_the_best_level_wins_and_its_items_are_the_reasons(django_assert_num_queries) -> None:
    candidate = make_candidate()
    for nct, phase in (("NCT00000001", "Phase 2"), ("NCT00000002", "Phase 2"), ("NCT00000003", "Phase 1")):
        CandidateTrial.objects.create(candidate=candidate, trial=make_trial(nct, phase=phase, status="Completed"))
    CandidatePublication.objects.create(
        candidate=candidate, publication=make_publication("111", study_type="Case Reports"), tier=3
    )

    with django_assert_num_queries(2):
        result = evidence_level_compute(candidate)

    assert result.level == "L2"
    assert result.reasons == [
        "NCT00000001: Phase 2 trial (Completed) → L2",
        "NCT00000002: Phase 2 trial (Completed) → L2",
    ]
