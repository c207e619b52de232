"""Personal API tokens: shown once, stored hashed, scoped, revocable, expiring."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import token_create, token_revoke
from dossiers.models import Candidate
from tests.api.conftest import token_client
from tests.factories import PASSWORD
from tests.reviews.conftest import Personas, reload


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_token_is_stored_hashed_and_works(people: Personas, candidate: Candidate) -> None:
    token, raw = token_create(user=people.viewer, name="tracker")
    stored = ApiToken.objects.get(pk=token.pk)
    assert raw.startswith(f"prt_{stored.prefix}_")
    assert stored.secret_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {getattr(stored, f.attname) for f in ApiToken._meta.concrete_fields}
    response = _bearer(raw).get(f"/api/v1/candidates/{candidate.pk}/")
    assert response.status_code == 200 and response.json()["id"] == candidate.pk
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None


def test_profile_page_shows_the_secret_once(people: Personas) -> None:
    client = Client()
    client.force_login(people.viewer)
    created = client.post(reverse("accounts:profile"), {"name": "warehouse", "scope": "read"})
    assert created.status_code == 201
    raw = created.context["new_secret"]
    assert raw and raw in created.content.decode()
    again = client.get(reverse("accounts:profile"))
    assert raw not in again.content.decode()
    assert ApiToken.objects.get(user=people.viewer).secret_hash == hashlib.sha256(raw.encode()).hexdigest()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "triage/", {}),
        ("post", "deprioritize/", {"reason_code": "duplicate"}),
        ("post", "comments/", {"body": "hello"}),
        ("put", "watch/", None),
        ("delete", "watch/", None),
    ],
)
def test_read_scope_cannot_change_anything(
    people: Personas, candidate: Candidate, method: str, path: str, body: dict[str, str] | None
) -> None:
    client = token_client(people.curator, scope=ApiToken.Scope.READ)
    assert client.get(f"/api/v1/candidates/{candidate.pk}/").status_code == 200
    before = reload(candidate)
    response = getattr(client, method)(f"/api/v1/candidates/{candidate.pk}/{path}", body, format="json")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "This API token has read scope; it cannot change anything.",
        "code": "permission_denied",
        "errors": {},
    }
    after = reload(candidate)
    assert (after.status, after.version) == (before.status, before.version)
    assert not candidate.comments.exists()


def test_read_scope_cannot_sign_off_or_resolve_conditions(people: Personas, candidate: Candidate) -> None:
    client = token_client(people.approver, scope=ApiToken.Scope.READ)
    body = {"password": PASSWORD, "decision": "hold"}
    assert client.post(f"/api/v1/candidates/{candidate.pk}/sign-off/", body).status_code == 403
    condition = candidate.conditions.get()
    assert client.post(f"/api/v1/conditions/{condition.pk}/waive/", {"justification": "x"}).status_code == 403


def test_revoked_token_is_401(people: Personas, candidate: Candidate) -> None:
    token, raw = token_create(user=people.viewer, name="tracker", scope=ApiToken.Scope.WRITE)
    client = _bearer(raw)
    assert client.get("/api/v1/markets/").status_code == 200
    token_revoke(token_id=token.pk, by=people.viewer)
    response = client.get("/api/v1/markets/")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "This API token has been revoked.",
        "code": "authentication_failed",
        "errors": {},
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401(people: Personas) -> None:
    token, raw = token_create(user=people.viewer, name="tracker", expires_at=timezone.now() + timedelta(hours=1))
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = _bearer(raw).get("/api/v1/markets/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API token has expired."


@pytest.mark.parametrize("header", ["Bearer prt_deadbeef_nope", "Bearer", "Bearer a b", "Bearer not-a-token"])
def test_bad_tokens_are_401(people: Personas, header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/markets/")
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "code", "errors"}


def test_token_of_a_deactivated_user_is_401(people: Personas) -> None:
    client = token_client(people.viewer)
    people.viewer.is_active = False
    people.viewer.save()
    assert client.get("/api/v1/markets/").status_code == 401


def test_session_also_authenticates(people: Personas) -> None:
    client = APIClient()
    client.force_login(people.viewer)
    assert [m["code"] for m in client.get("/api/v1/markets/").json()["results"]] == ["IN"]
