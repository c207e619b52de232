"""schemathesis against the live schema: generated requests to every operation, as a read-write token user.

The schema is loaded from `/api/v1/schema/` of the running app (WSGI, in this test's database), so it is
the schema clients see. Checks: no 5xx, and every response matches its documented schema and content type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from accounts.models import ApiToken
from accounts.services import token_create
from dossiers.models import Candidate, CandidatePublication, CandidateTrial, GuardrailCondition, Prediction
from portal.roles import Role
from reviews import services
from reviews.models import AuditEvent
from tests.factories import make_publication, make_trial, make_user
from tests.reviews.conftest import Personas, to_in_review, vote

MAX_EXAMPLES = 12
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _data(people: Personas, candidate: Candidate) -> dict[str, int]:
    """Objects for the generated requests to hit, by the resource of the URL: a candidate in review with
    evidence, a comment and conditions, and a prediction."""
    market, dossier = people.market, candidate.dossier
    prediction = Prediction.objects.create(
        market=market, drug=dossier.drug, disease="X", score=0.4, imported_at=timezone.now()
    )
    trial, publication = make_trial(), make_publication()
    trial_link = CandidateTrial.objects.create(candidate=candidate, trial=trial)
    publication_link = CandidatePublication.objects.create(candidate=candidate, publication=publication)
    services.comment_add(candidate_id=candidate.pk, by=people.curator, body="@viewer see the label")
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1)
    condition = GuardrailCondition.objects.create(candidate=candidate, title="Second", due_date=dt.date(2030, 1, 1))
    return {
        "markets": market.pk,
        "drugs": dossier.drug_id,
        "dossiers": dossier.pk,
        "candidates": candidate.pk,
        "predictions": prediction.pk,
        "trials": trial.pk,
        "publications": publication.pk,
        "trial-links": trial_link.pk,
        "publication-links": publication_link.pk,
        "conditions": condition.pk,
        "audit-events": AuditEvent.objects.latest("id").pk,
    }


def _aim(case: schemathesis.Case, real: dict[str, int]) -> None:
    """Point half the generated ids (the even ones) at real objects, so that success paths run too."""
    params = case.path_parameters or {}
    resource = case.operation.path.removeprefix("/api/v1/").split("/")[0]
    value = str(params.get("id", ""))
    if resource in real and value.isdigit() and int(value) % 2 == 0:
        params["id"] = real[resource]


@pytest.fixture
def _keep_the_test_connection() -> Iterator[None]:
    """The WSGI handler closes "old" connections around each request; that would close the test's
    transaction. Django's own test client disconnects the same handlers."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.mark.postgres
@pytest.mark.usefixtures("_keep_the_test_connection")
def test_live_schema_has_no_server_errors_and_conforms(
    people: Personas, candidate: Candidate, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hundreds of requests a minute: the throttles (tested elsewhere) would answer most of them 429.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"token": None, "user": None, "anon": None})
    real = _data(people, candidate)
    user = make_user("integration", Role.ADMIN, markets=[people.market])
    _, raw = token_create(user=user, name="schemathesis", scope=ApiToken.Scope.WRITE)
    headers = {"Authorization": f"Bearer {raw}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application(), headers=headers)

    failures: list[str] = []
    succeeded: set[str] = set()
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"Invalid operation in the schema: {result.err()}")
            continue
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            _aim(case, real)
            response = case.call(headers=headers)
            if response.status_code < 300:
                succeeded.add(case.operation.label)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.label}: {exc}")
    assert failures == [], "\n\n".join(failures)
    # The real ids make the success paths run too, not only the refusals.
    assert {
        "GET /api/v1/candidates/{id}/",
        "GET /api/v1/candidates/{id}/reviews/",
        "GET /api/v1/dossiers/{id}/export.{fmt}",
        "POST /api/v1/candidates/{id}/comments/",
        "PATCH /api/v1/dossiers/{id}/",
        "POST /api/v1/trial-links/{id}/curate/",
        "POST /api/v1/publication-links/{id}/curate/",
        "POST /api/v1/candidates/{id}/evidence-seen/",
    } <= succeeded
