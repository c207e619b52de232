"""RxNav client against the real rxcui recording and hand-made name and approximate-match answers."""

import pytest

from dossiers.sources import rxnorm
from dossiers.sources.errors import MalformedResponse
from tests.fakeapi import APPROXIMATE, RXCUI, FakeApi, file_reply, handmade, json_reply, recorded


def test_rxcui_from_the_real_recording(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, file_reply(recorded("rxnav-rxcui.json")))

    assert rxnorm.rxcui_by_name(name="ibuprofen") == ("197381",)


def test_rxcui_by_name_sends_the_name(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))

    assert rxnorm.rxcui_by_name(name=" lenalidomide ") == ("342369",)
    (request,) = fakeapi.seen(RXCUI)
    assert (request.params["name"], request.params["search"]) == ("lenalidomide", "2")


def test_no_rxcui_is_empty(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-no-match.handmade.json")))

    assert rxnorm.rxcui_by_name(name="lenalidomid") == ()


def test_approximate_term(fakeapi: FakeApi) -> None:
    fakeapi.route(APPROXIMATE, file_reply(handmade("rxnav-approximateTerm-lenalidomid.handmade.json")))

    matches = rxnorm.approximate_term(term="lenalidomid", max_entries=3)

    assert matches[0] == rxnorm.ApproximateMatch(
        rxcui="342369", score=9.287, rank=1, name="lenalidomide", source="RXNORM"
    )
    assert [m.rxcui for m in matches] == ["342369", "342369", "342371"]
    (request,) = fakeapi.seen(APPROXIMATE)
    assert (request.params["term"], request.params["maxEntries"]) == ("lenalidomid", "3")


def test_approximate_term_without_candidates(fakeapi: FakeApi) -> None:
    fakeapi.route(APPROXIMATE, json_reply({"approximateGroup": {"inputTerm": "zzqx"}}))

    assert rxnorm.approximate_term(term="zzqx") == []


def test_normalize_prefers_the_exact_match(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))

    assert rxnorm.normalize(name="lenalidomide") == "342369"
    assert fakeapi.seen(APPROXIMATE) == []


def test_normalize_falls_back_to_the_approximate_match(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-no-match.handmade.json")))
    fakeapi.route(APPROXIMATE, file_reply(handmade("rxnav-approximateTerm-lenalidomid.handmade.json")))

    assert rxnorm.normalize(name="lenalidomid") == "342369"


def test_a_lone_rxcui_and_numeric_scores_are_read(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, json_reply({"idGroup": {"name": "lenalidomide", "rxnormId": "342369"}}))
    candidate = {"rxcui": 342369, "rank": 1, "score": 9.3, "name": "lenalidomide", "source": "RXNORM"}
    fakeapi.route(APPROXIMATE, json_reply({"approximateGroup": {"candidate": [candidate]}}))

    assert rxnorm.rxcui_by_name(name="lenalidomide") == ("342369",)
    assert rxnorm.approximate_term(term="lenalidomid")[0].rxcui == "342369"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (RXCUI, {"rxnormId": ["1"]}, "missing 'idGroup'"),
        (RXCUI, {"idGroup": {"rxnormId": {"id": "197381"}}}, "'rxnormId' is dict, expected list or str"),
        (RXCUI, {"idGroup": {"rxnormId": [{"id": "197381"}]}}, "rxnormId[0] is dict, expected a string"),
        (APPROXIMATE, {"approximateGroup": {"candidate": ["342369"]}}, "candidate[0] is str, expected an object"),
        (APPROXIMATE, {"candidate": []}, "missing 'approximateGroup'"),
        (APPROXIMATE, {"approximateGroup": {"candidate": [{"rxcui": "1", "rank": "1"}]}}, "missing 'score'"),
        (APPROXIMATE, {"approximateGroup": {"candidate": [{"rxcui": "1", "rank": "x", "score": "1"}]}}, "not a number"),
    ],
)
def test_partial_responses_are_malformed(fakeapi: FakeApi, path: str, body: dict, message: str) -> None:
    fakeapi.route(path, json_reply(body))

    with pytest.raises(MalformedResponse) as caught:
        if path == RXCUI:
            rxnorm.rxcui_by_name(name="x")
        else:
            rxnorm.approximate_term(term="x")

    assert message in caught.value.message
    assert caught.value.source == "rxnav"


def test_normalise_gives_the_name_to_search_by(fakeapi: FakeApi) -> None:
    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-lenalidomide.handmade.json")))
    assert rxnorm.normalise(name=" Lenalidomide ") == rxnorm.Normalised(rxcui="342369", name="Lenalidomide", exact=True)

    fakeapi.route(RXCUI, file_reply(handmade("rxnav-rxcui-no-match.handmade.json")))
    fakeapi.route(APPROXIMATE, file_reply(handmade("rxnav-approximateTerm-lenalidomid.handmade.json")))
    # rank 1 has RXNORM "lenalidomide" and MTHSPL "LENALIDOMIDE": RxNorm's own spelling wins
    assert rxnorm.normalise(name="lenalidomid") == rxnorm.Normalised(rxcui="342369", name="lenalidomide", exact=False)

    fakeapi.route(APPROXIMATE, json_reply({"approximateGroup": {"candidate": []}}))
    assert rxnorm.normalise(name="zzq") is None
