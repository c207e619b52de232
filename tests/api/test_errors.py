"""One error shape for every status, throttling per token and per user, and query counts of the lists."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from accounts.models import ApiToken
from dossiers.models import Candidate, CandidatePublication, CandidateTrial, Prediction
from reviews import services
from tests.api.conftest import token_client
from tests.factories import make_candidate, make_dossier, make_drug, make_publication, make_trial
from tests.reviews.conftest import Personas, to_in_review, vote

SHAPE = {"detail", "code", "errors"}


def _check(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.content  # type: ignore[attr-defined]
    assert response["Content-Type"] == "application/json"  # type: ignore[index]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == SHAPE and body["code"] == code and body["detail"]
    return body  # type: ignore[no-any-return]


def test_error_shape_for_each_status(people: Personas, candidate: Candidate, monkeypatch: pytest.MonkeyPatch) -> None:
    curator = token_client(people.curator)
    base = f"/api/v1/candidates/{candidate.pk}"

    body = _check(curator.post(f"{base}/deprioritize/", {"reason_code": "nope"}, format="json"), 400, "invalid")
    assert body["errors"] == {"reason_code": ['"nope" is not a valid choice.']}
    _check(APIClient().get(f"{base}/"), 401, "not_authenticated")
    _check(token_client(people.viewer).post(f"{base}/triage/"), 403, "permission_denied")
    _check(curator.get("/api/v1/candidates/999999/"), 404, "not_found")
    _check(curator.get("/api/v1/no-such-thing/"), 404, "not_found")
    _check(curator.put(f"{base}/triage/"), 405, "method_not_allowed")
    _check(curator.post(f"{base}/triage/", HTTP_IF_MATCH='"999"'), 412, "precondition_failed")
    _check(curator.post(f"{base}/start-curation/"), 409, "invalid_state")
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"token": "1/min", "user": "100/min", "anon": "9/min"})
    curator.get(f"{base}/")
    body = _check(curator.get(f"{base}/"), 429, "throttled")
    assert str(body["detail"]).startswith("Request was throttled.")


def test_throttle_per_token(people: Personas, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"token": "3/min", "user": "100/min", "anon": "9/min"})
    first, second = token_client(people.viewer), token_client(people.viewer)
    assert [first.get("/api/v1/markets/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert first.get("/api/v1/markets/")["Retry-After"]
    assert second.get("/api/v1/markets/").status_code == 200  # another token of the same user has its own budget
    assert token_client(people.curator).get("/api/v1/markets/").status_code == 200


def test_throttle_per_user_counts_every_token_and_the_session(
    people: Personas, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"token": "100/min", "user": "4/min", "anon": "9/min"})
    first, second = token_client(people.viewer), token_client(people.viewer, scope=ApiToken.Scope.READ)
    session = APIClient()
    session.force_login(people.viewer)
    codes = [client.get("/api/v1/markets/").status_code for client in (first, second, session, first)]
    assert codes == [200, 200, 200, 200]
    assert [c.get("/api/v1/markets/").status_code for c in (first, second, session)] == [429, 429, 429]
    assert token_client(people.curator).get("/api/v1/markets/").status_code == 200


# ---------------------------------------------------------------- query counts


def _grow_candidates(p: Personas, candidate: Candidate, n: int) -> None:
    for _ in range(n):
        make_candidate(make_dossier(market=p.market))


def _grow_predictions(p: Personas, candidate: Candidate, n: int) -> None:
    for _ in range(n):
        Prediction.objects.create(market=p.market, drug=make_drug(), disease="X", score=0.5, imported_at=timezone.now())


def _grow_evidence(p: Personas, candidate: Candidate, n: int) -> None:
    for _ in range(n):
        CandidateTrial.objects.create(candidate=candidate, trial=make_trial())
        CandidatePublication.objects.create(candidate=candidate, publication=make_publication())


def _grow_comments(p: Personas, candidate: Candidate, n: int) -> None:
    for _ in range(n):
        services.comment_add(candidate_id=candidate.pk, by=p.curator, body="@viewer @approver look")


def _grow_events(p: Personas, candidate: Candidate, n: int) -> None:
    for _ in range(n):
        other = make_candidate(make_dossier(market=p.market))
        services.candidate_triage(candidate_id=other.pk, by=p.curator)


def _grow_nothing(p: Personas, candidate: Candidate, n: int) -> None:
    return None


LISTS: list[tuple[str, Callable[[Personas, Candidate, int], None]]] = [
    ("/api/v1/candidates/", _grow_candidates),
    ("/api/v1/dossiers/", _grow_candidates),
    ("/api/v1/drugs/", _grow_candidates),
    ("/api/v1/markets/", _grow_nothing),
    ("/api/v1/predictions/", _grow_predictions),
    ("/api/v1/trials/", _grow_evidence),
    ("/api/v1/publications/", _grow_evidence),
    ("/api/v1/candidates/{id}/", _grow_evidence),
    ("/api/v1/candidates/{id}/comments/", _grow_comments),
    ("/api/v1/audit-events/", _grow_events),
]


def _queries(client: APIClient, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(("path", "grow"), LISTS, ids=[p for p, _ in LISTS])
def test_list_queries_do_not_grow_with_rows(
    people: Personas, candidate: Candidate, path: str, grow: Callable[[Personas, Candidate, int], None]
) -> None:
    client = APIClient()
    client.force_login(people.viewer)
    path = path.replace("{id}", str(candidate.pk))
    grow(people, candidate, 2)
    small = _queries(client, path)
    grow(people, candidate, 6)
    assert _queries(client, path) == small


def test_review_list_queries_do_not_grow_with_rounds(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1)
    vote(candidate, people.reviewer2)
    client = APIClient()
    client.force_login(people.viewer)
    path = f"/api/v1/candidates/{candidate.pk}/reviews/"
    assert len(client.get(path).json()) == 2
    assert _queries(client, path) <= 12


# ---------------------------------------------------------------- schema, docs and cursor errors


@pytest.mark.parametrize("accept", ["*/*", "application/vnd.oai.openapi", "application/vnd.oai.openapi+json"])
def test_anonymous_schema_error_is_json_whatever_the_format(db: None, accept: str) -> None:
    _check(APIClient().get("/api/v1/schema/", HTTP_ACCEPT=accept), 401, "not_authenticated")
    _check(APIClient().get("/api/v1/schema/?format=yaml"), 401, "not_authenticated")


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_send_a_signed_out_browser_to_the_login_page(db: None, path: str) -> None:
    response = APIClient().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize("path", ["/api/v1/docs/", "/api/v1/redoc/"])
def test_docs_pages_refuse_a_bad_token_in_the_error_shape(db: None, path: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer prt_not-a-token")
    _check(client.get(path), 401, "authentication_failed")


def test_invalid_prediction_cursor_is_a_400(people: Personas) -> None:
    body = _check(token_client(people.viewer).get("/api/v1/predictions/?cursor=garbage"), 400, "invalid_cursor")
    assert "next" in str(body["detail"])
