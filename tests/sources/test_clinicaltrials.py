"""ClinicalTrials.gov v2 client against the real recordings and hand-made pages, served by the fake."""

import pytest

from dossiers.sources import clinicaltrials
from dossiers.sources.clinicaltrials import TrialRecord, is_safety_stop
from dossiers.sources.errors import MalformedResponse, NotFound
from tests.fakeapi import CTGOV, FakeApi, file_reply, handmade, json_reply, raw_reply, recorded

PAGE1 = handmade("ctgov-v2-studies-lenalidomide-aml-page1.handmade.json")
PAGE2 = handmade("ctgov-v2-studies-lenalidomide-aml-page2.handmade.json")


def test_first_page_of_the_real_search_recording(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, file_reply(recorded("ctgov-v2-studies-search.json")))

    page = next(clinicaltrials.iter_pages(condition="melanoma", page_size=3))

    assert page.total_count == 480
    assert page.next_page_token == "ZVt07cGHkvI2wRk2CJf6_LLq14bEL8swd7KrgP4ZmTmRvvE"
    assert [t.nct_id for t in page.trials] == ["NCT06970236", "NCT04114136", "NCT04318717"]
    first = page.trials[0]
    assert first == TrialRecord(
        nct_id="NCT06970236",
        brief_title="Resistance Exercise in Patients With Ocular Melanoma",
        official_title="",
        overall_status="RECRUITING",
        why_stopped="",
        phases=("NA",),
        study_type="INTERVENTIONAL",
        allocation="",
        enrollment=40,
        start_date="2025-02-01",
        completion_date="2026-12",
        conditions=("Ocular Melanoma",),
        interventions=("Exercise",),
        brief_summary=first.brief_summary,
        has_results=None,  # the recording asked for fields without hasResults
        last_update_date="",
    )
    assert first.brief_summary.startswith("Choroidal melanoma (CM) is one of the most common intraocular cancers")
    assert page.trials[1].interventions == (
        "Nivolumab or Pembrolizumab (dependent upon approved indication)",
        "Metformin",
        "Rosiglitazone",
    )
    assert page.trials[2].enrollment == 20
    assert not any(t.stopped_for_safety for t in page.trials)


def test_search_sends_condition_intervention_page_size_and_total(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, file_reply(handmade("ctgov-v2-studies-empty.handmade.json")))

    clinicaltrials.search_studies(condition="myeloid leukemia", intervention="lenalidomide", page_size=50)

    (request,) = fakeapi.seen(CTGOV)
    assert request.params["query.cond"] == "myeloid leukemia"
    assert request.params["query.intr"] == "lenalidomide"
    assert request.params["pageSize"] == "50"
    assert request.params["countTotal"] == "true"
    assert "pageToken" not in request.params
    assert "WhyStopped" in request.params["fields"].split(",")


def test_get_study_from_the_real_recording(fakeapi: FakeApi) -> None:
    fakeapi.route(f"{CTGOV}/NCT06382129", file_reply(recorded("ctgov-v2-study-NCT06382129.json")))

    trial = clinicaltrials.get_study("NCT06382129")

    assert trial.nct_id == "NCT06382129"
    assert trial.brief_title.startswith("A Study Comparing BL-B01D1 With Docetaxel in Patients With Unresectable")
    assert trial.overall_status == "ACTIVE_NOT_RECRUITING"
    assert trial.phases == ("PHASE3",)
    assert trial.enrollment == 698
    assert (trial.start_date, trial.completion_date) == ("2024-05-17", "2026-12")
    assert trial.conditions == ("Non-small Cell Lung Cancer",)
    assert trial.interventions == ("BL-B01D1", "Docetaxel")
    assert trial.stopped_for_safety is False


def test_paging_follows_next_page_token_across_two_pages(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, file_reply(PAGE1))
    fakeapi.route(CTGOV, file_reply(PAGE2), query={"pageToken": "NF0g5JGBlPMuwQY"})

    search = clinicaltrials.search_studies(condition="myeloid leukemia", intervention="lenalidomide", page_size=2)

    assert search.total_count == 3
    assert [t.nct_id for t in search.trials] == ["NCT01358734", "NCT09999901", "NCT00957385"]
    first, second = fakeapi.seen(CTGOV)
    assert "pageToken" not in first.params
    assert second.params["pageToken"] == "NF0g5JGBlPMuwQY"
    assert second.params["query.intr"] == "lenalidomide"
    assert search.url.startswith(f"{fakeapi.url}{CTGOV}?query.cond=myeloid+leukemia&query.intr=lenalidomide")


def test_full_fields_and_the_safety_flag(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, file_reply(PAGE1))
    fakeapi.route(CTGOV, file_reply(PAGE2), query={"pageToken": "NF0g5JGBlPMuwQY"})

    completed, terminated, _ = clinicaltrials.search_studies(condition="myeloid leukemia").trials

    assert completed.has_results is True
    assert completed.allocation == "RANDOMIZED"
    assert completed.last_update_date == "2021-02-18"
    assert completed.official_title.startswith("A Randomized Phase II Study of Lenalidomide")
    assert completed.stopped_for_safety is False
    assert terminated.overall_status == "TERMINATED"
    assert terminated.why_stopped.startswith("Terminated early by the sponsor on the advice of the DSMB")
    assert terminated.phases == ("PHASE1", "PHASE2")
    assert terminated.has_results is False
    assert terminated.stopped_for_safety is True


def test_empty_results(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, file_reply(handmade("ctgov-v2-studies-empty.handmade.json")))

    search = clinicaltrials.search_studies(condition="no such disease", intervention="lenalidomide")

    assert search.trials == ()
    assert search.total_count == 0


def test_a_repeated_page_token_is_malformed_not_an_endless_loop(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, json_reply({"studies": [], "totalCount": 5, "nextPageToken": "same"}))

    with pytest.raises(MalformedResponse, match="nextPageToken 'same' repeats"):
        clinicaltrials.search_studies(condition="x")
    assert len(fakeapi.seen(CTGOV)) == 2


def test_malformed_json(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, raw_reply('{"studies": [{"protocolSection": '))

    with pytest.raises(MalformedResponse, match="not valid JSON"):
        clinicaltrials.search_studies(condition="x")


def _one_study(**modules: dict) -> dict:
    protocol = {"identificationModule": {"nctId": "NCT01358734"}, "statusModule": {"overallStatus": "COMPLETED"}}
    return {"studies": [{"protocolSection": {**protocol, **modules}}]}


def test_tolerated_variations_a_lone_phase_string_and_a_float_count(fakeapi: FakeApi) -> None:
    design = {"phases": "PHASE3", "enrollmentInfo": {"count": 88.0}, "designInfo": {"allocation": "RANDOMIZED"}}
    fakeapi.route(CTGOV, json_reply(_one_study(designModule=design)))

    (trial,) = clinicaltrials.search_studies(condition="x").trials

    assert (trial.phases, trial.enrollment, trial.allocation) == (("PHASE3",), 88, "RANDOMIZED")


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"totalCount": 1}, "missing 'studies'"),
        ({"studies": [{"protocolSection": {"statusModule": {"overallStatus": "COMPLETED"}}}]}, "identificationModule"),
        ({"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT01358734"}}}]}, "overallStatus"),
        ({"studies": [{"hasResults": False}]}, "missing 'protocolSection'"),
        (
            {
                "studies": [
                    {
                        "protocolSection": {
                            "identificationModule": {"nctId": "NCT01358734"},
                            "statusModule": {"overallStatus": "COMPLETED"},
                            "designModule": {"enrollmentInfo": {"count": "many"}},
                        }
                    }
                ]
            },
            "'designModule.enrollmentInfo.count' is str, expected int or float",
        ),
        (_one_study(conditionsModule={"conditions": [{"name": "AML"}]}), "conditionsModule.conditions[0] is dict"),
        (_one_study(armsInterventionsModule={"interventions": ["Lenalidomide"]}), "interventions[0] is str"),
        (_one_study(designModule={"enrollmentInfo": {"count": 8.5}}), "is 8.5, expected a whole number"),
    ],
)
def test_partial_response_names_what_is_missing(fakeapi: FakeApi, body: dict, missing: str) -> None:
    fakeapi.route(CTGOV, json_reply(body))

    with pytest.raises(MalformedResponse) as caught:
        clinicaltrials.search_studies(condition="x")

    assert missing in caught.value.message
    assert caught.value.source == "clinicaltrials"
    assert CTGOV in caught.value.url


def test_unknown_study_is_not_found(fakeapi: FakeApi) -> None:
    fakeapi.route(f"{CTGOV}/NCT00000000", json_reply({"message": "not found"}, status=404))

    with pytest.raises(NotFound):
        clinicaltrials.get_study("NCT00000000")


def test_a_malformed_nct_id_is_refused_before_any_request(fakeapi: FakeApi) -> None:
    with pytest.raises(ValueError, match="is not an NCT id"):
        clinicaltrials.get_study("NCT123")
    assert fakeapi.seen() == []


@pytest.mark.parametrize(
    ("status", "why", "expected"),
    [
        ("TERMINATED", "Safety concerns", True),
        ("TERMINATED", "Unexpected toxicity in cohort 2", True),
        ("SUSPENDED", "Serious adverse events under review", True),
        ("WITHDRAWN", "Risk outweighs benefit", True),
        ("TERMINATED", "Two patients died of sepsis", True),
        ("TERMINATED", "Sponsor decision, not related to safety", False),
        ("TERMINATED", "Slow accrual; no safety concerns", False),
        ("TERMINATED", "Business decision unrelated to safety or efficacy", False),
        ("TERMINATED", "Futility at interim analysis", False),
        ("TERMINATED", "", False),
        ("COMPLETED", "safety", False),
    ],
)
def test_safety_stop_keyword_rule(status: str, why: str, expected: bool) -> None:
    assert is_safety_stop(status, why) is expected


def test_the_page_cap_stops_paging_and_says_the_search_is_incomplete(fakeapi: FakeApi) -> None:
    fakeapi.route(CTGOV, file_reply(PAGE1))
    fakeapi.route(CTGOV, file_reply(PAGE2), query={"pageToken": "NF0g5JGBlPMuwQY"})

    capped = clinicaltrials.search_studies(condition="x", max_pages=1)
    whole = clinicaltrials.search_studies(condition="x", max_pages=2)

    assert (len(capped.trials), capped.complete, capped.pages) == (2, False, 1)
    assert (len(whole.trials), whole.complete, whole.pages) == (3, True, 2)


def test_intervention_query_joins_names_with_or() -> None:
    assert clinicaltrials.intervention_query(["lenalidomide"]) == "lenalidomide"
    assert clinicaltrials.intervention_query(["lenalidomide", "Revlimid"]) == "lenalidomide OR Revlimid"
    assert clinicaltrials.intervention_query(["tretinoin", "all trans retinoic acid"]) == (
        "tretinoin OR (all trans retinoic acid)"
    )
