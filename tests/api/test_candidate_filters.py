"""The candidate list API takes the page's filter names (q, drug by name, level, sort) and sorts like the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import QueryDict
from rest_framework.test import APIClient

from dossiers.forms import CandidateFilterForm
from dossiers.models import Candidate
from dossiers.selectors import candidate_list_for, markets_visible_to
from tests.api.conftest import token_client
from tests.factories import make_candidate, make_dossier, make_drug
from tests.reviews.conftest import Personas


@pytest.fixture
def listed(people: Personas) -> dict[str, Candidate]:
    """Candidates of two drugs in India, one unscored, with different levels; one in Canada."""
    lenalidomide = make_dossier(drug=make_drug("Lenalidomide"), market=people.market)
    metformin = make_dossier(drug=make_drug("Metformin"), market=people.market)
    rows = {
        "len-lupus": make_candidate(lenalidomide, disease="Lupus", txgnn_score=0.91, evidence_level="L4"),
        "len-mds": make_candidate(
            lenalidomide, disease="Myelodysplastic syndrome", txgnn_score=0.99, evidence_level="L2"
        ),
        "len-unscored": make_candidate(lenalidomide, disease="Amyloidosis", txgnn_score=None, evidence_level="L5"),
        "met-lupus": make_candidate(metformin, disease="Lupus nephritis", txgnn_score=0.42, evidence_level="L2"),
    }
    canada = people.outsider.markets.get()
    make_candidate(make_dossier(drug=make_drug("Lenalidomide CA"), market=canada), disease="Lupus", txgnn_score=0.5)
    return rows


def _api_ids(client: APIClient, query: str) -> list[int]:
    response = client.get(f"/api/v1/candidates/?{query}")
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def _page_ids(user: User, query: str) -> list[int]:
    form = CandidateFilterForm(QueryDict(query), markets=markets_visible_to(user))
    return list(candidate_list_for(user, form.filters()).values_list("pk", flat=True))


PAGE_QUERIES = [
    "q=lupus",
    "q=lenal",
    "drug=lenal",
    "drug=METF",
    "level=L2",
    "sort=score",
    "sort=level",
    "sort=updated",
    "q=lupus&sort=level",
    "drug=lenal&level=L4",
    "disease=lupus&status=predicted&market=IN",
]


@pytest.mark.parametrize("query", PAGE_QUERIES)
def test_page_query_strings_give_the_page_results(people: Personas, listed: dict[str, Candidate], query: str) -> None:
    assert _api_ids(token_client(people.viewer), query) == _page_ids(people.viewer, query)


def test_drug_is_still_an_id_when_numeric(people: Personas, listed: dict[str, Candidate]) -> None:
    drug_id = listed["met-lupus"].dossier.drug_id
    assert _api_ids(token_client(people.viewer), f"drug={drug_id}") == [listed["met-lupus"].pk]


def test_api_and_page_names_combine(people: Personas, listed: dict[str, Candidate]) -> None:
    client = token_client(people.viewer)
    assert _api_ids(client, "q=lupus&evidence_level=L2") == [listed["met-lupus"].pk]
    assert _api_ids(client, "level=L2&search=myelo") == [listed["len-mds"].pk]


def test_unknown_sort_or_level_is_refused(people: Personas) -> None:
    client = token_client(people.viewer)
    for query in ("sort=price", "level=L9"):
        response = client.get(f"/api/v1/candidates/?{query}")
        assert response.status_code == 400 and response.json()["code"] == "invalid", query
        assert set(response.json()["errors"]) == {query.split("=")[0]}


@pytest.mark.parametrize("ordering", ["", "ordering=-txgnn_score", "ordering=txgnn_score", "ordering=-txgnn_rank"])
def test_unscored_candidates_sort_last_either_way(
    people: Personas, listed: dict[str, Candidate], ordering: str
) -> None:
    ids = _api_ids(token_client(people.viewer), ordering)
    assert ids[-1] == listed["len-unscored"].pk or ordering.endswith("rank")
    if ordering in ("", "ordering=-txgnn_score"):
        names = ["len-mds", "len-lupus", "met-lupus", "len-unscored"]
        assert ids == [listed[name].pk for name in names]  # the page's default order
    if ordering == "ordering=-txgnn_rank":
        assert ids == sorted(ids)  # all unranked: the id breaks the tie, so pages are stable


def test_ordering_wins_over_sort(people: Personas, listed: dict[str, Candidate]) -> None:
    ids = _api_ids(token_client(people.viewer), "sort=level&ordering=txgnn_score")
    assert ids == [listed[name].pk for name in ["met-lupus", "len-lupus", "len-mds", "len-unscored"]]


def test_schema_documents_the_page_names(people: Personas) -> None:
    client = APIClient()
    client.force_login(people.viewer)
    schema: dict[str, Any] = client.get("/api/v1/schema/?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/v1/candidates/"]["get"]["parameters"]}
    assert {"q", "drug", "level", "sort", "search", "ordering", "evidence_level"} <= set(parameters)
    assert parameters["drug"]["schema"]["type"] == "string" and "name" in parameters["drug"]["description"]
    assert parameters["sort"]["schema"]["enum"] == ["level", "score", "updated"]
    for name in ("q", "level", "sort"):
        assert "page" in parameters[name]["description"], name
