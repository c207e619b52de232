"""openFDA drug label client against the real (minimised) Keytruda recording and a hand-made label."""

import pytest

from dossiers.sources import openfda
from dossiers.sources.errors import MalformedResponse
from tests.fakeapi import OPENFDA_LABEL, FakeApi, file_reply, handmade, json_reply, recorded


def test_the_real_recording_picks_the_exact_brand_name(fakeapi: FakeApi) -> None:
    fakeapi.route(OPENFDA_LABEL, file_reply(recorded("openfda-label-keytruda-minimized.json")))

    label = openfda.find_label(name="Keytruda")

    assert label == openfda.DrugLabel(
        set_id="9333c79b-d487-4538-a9f0-71b91a02b287",
        effective_time="",
        brand_names=("KEYTRUDA",),
        generic_names=("PEMBROLIZUMAB",),
        boxed_warning="",
        contraindications="",
        warnings_and_cautions="",
        drug_interactions="",
    )
    (request,) = fakeapi.seen(OPENFDA_LABEL)
    assert request.params["search"] == 'openfda.generic_name:"Keytruda" OR openfda.brand_name:"Keytruda"'
    assert (request.params["limit"], request.params["sort"]) == ("5", "effective_time:desc")
    assert "api_key" not in request.params


def test_search_reports_total_and_every_label(fakeapi: FakeApi) -> None:
    fakeapi.route(OPENFDA_LABEL, file_reply(recorded("openfda-label-keytruda-minimized.json")))

    search = openfda.search_labels(name="Keytruda")

    assert search.total == 2
    assert [label.brand_names for label in search.labels] == [("KEYTRUDA QLEX",), ("KEYTRUDA",)]
    assert search.labels[0].generic_names == ("PEMBROLIZUMAB AND BERAHYALURONIDASE ALFA-PMPH",)


def test_label_sections_boxed_warning_and_effective_time(fakeapi: FakeApi) -> None:
    fakeapi.route(OPENFDA_LABEL, file_reply(handmade("openfda-label-lenalidomide.handmade.json")))

    label = openfda.find_label(name="lenalidomide")

    assert label is not None
    assert label.set_id == "4c1f6a8e-2d3b-4e5f-9a7b-1c2d3e4f5a6b"
    assert label.brand_names == ("REVLIMID",)
    assert label.effective_time == "20250612"
    assert label.boxed_warning.startswith("WARNING: EMBRYO-FETAL TOXICITY, HEMATOLOGIC TOXICITY, and VENOUS")
    assert label.contraindications.split("\n\n") == [
        "4 CONTRAINDICATIONS 4.1 Pregnancy Lenalidomide capsules can cause embryo-fetal harm when administered "
        "to a pregnant female and are contraindicated in females who are pregnant.",
        "4.2 Severe Hypersensitivity Reactions Lenalidomide capsules are contraindicated in patients who have "
        "demonstrated severe hypersensitivity (e.g., angioedema, Stevens-Johnson syndrome, toxic epidermal "
        "necrolysis) to lenalidomide.",
    ]
    assert label.warnings_and_cautions.startswith("5 WARNINGS AND PRECAUTIONS 5.1 Embryo-Fetal Toxicity")
    assert label.drug_interactions.startswith("7 DRUG INTERACTIONS 7.1 Digoxin")


def test_old_format_labels_fall_back_to_warnings(fakeapi: FakeApi) -> None:
    fakeapi.route(OPENFDA_LABEL, file_reply(handmade("openfda-label-lenalidomide.handmade.json")))

    older = openfda.search_labels(name="lenalidomide").labels[1]

    assert (
        older.warnings_and_cautions
        == "WARNINGS Hematologic toxicity: monitor complete blood counts weekly for the first 8 weeks."
    )
    assert older.boxed_warning == ""


def test_the_brand_name_finds_the_same_label(fakeapi: FakeApi) -> None:
    fakeapi.route(OPENFDA_LABEL, file_reply(handmade("openfda-label-lenalidomide.handmade.json")))

    label = openfda.find_label(name="Revlimid")

    assert label is not None and label.brand_names == ("REVLIMID",)


def test_no_match_is_openfdas_404_and_means_no_label(fakeapi: FakeApi) -> None:
    fakeapi.route(OPENFDA_LABEL, file_reply(handmade("openfda-not-found.handmade.json"), status=404))

    assert openfda.find_label(name="zzqx") is None
    search = openfda.search_labels(name="zzqx")
    assert (search.labels, search.total) == ((), 0)
    assert len(fakeapi.seen(OPENFDA_LABEL)) == 2  # a 404 is an answer, not retried


def test_api_key_is_sent_when_configured(fakeapi: FakeApi, settings) -> None:
    settings.OPENFDA_API_KEY = "fda-key"
    fakeapi.route(OPENFDA_LABEL, file_reply(recorded("openfda-label-keytruda-minimized.json")))

    search = openfda.search_labels(name="Keytruda")

    assert fakeapi.seen(OPENFDA_LABEL)[0].params["api_key"] == "fda-key"
    assert "fda-key" not in search.url


def test_a_section_given_as_one_string_instead_of_a_list_is_read(fakeapi: FakeApi) -> None:
    result = {"set_id": "x", "boxed_warning": "WARNING: one paragraph", "openfda": {"generic_name": "lenalidomide"}}
    fakeapi.route(OPENFDA_LABEL, json_reply({"meta": {"results": {"total": 1}}, "results": [result]}))

    (label,) = openfda.search_labels(name="lenalidomide").labels

    assert (label.boxed_warning, label.generic_names) == ("WARNING: one paragraph", ("lenalidomide",))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"meta": {"results": {"total": 1}}}, "missing 'results'"),
        ({"meta": {}, "results": []}, "missing 'meta.results.total'"),
        ({"meta": {"results": {"total": 1}}, "results": [{"openfda": {}}]}, "missing 'set_id'"),
        ({"meta": {"results": {"total": 1}}, "results": [{"set_id": "x", "boxed_warning": {"a": 1}}]}, "boxed_warning"),
        (
            {"meta": {"results": {"total": 1}}, "results": [{"set_id": "x", "boxed_warning": [["nested"]]}]},
            "boxed_warning[0] is list, expected a string",
        ),
    ],
)
def test_partial_label_response_is_malformed(fakeapi: FakeApi, body: dict, message: str) -> None:
    fakeapi.route(OPENFDA_LABEL, json_reply(body))

    with pytest.raises(MalformedResponse) as caught:
        openfda.search_labels(name="x")

    assert message in caught.value.message
    assert caught.value.source == "openfda"


def test_a_name_is_required() -> None:
    with pytest.raises(ValueError, match="a drug name is required"):
        openfda.search_labels(name=' "" ')
