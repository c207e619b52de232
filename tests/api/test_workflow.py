"""The review workflow through the API: the walk, blindness, e-signature, ETags, states, audit and exports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from dossiers.models import Candidate, Decision
from reviews.models import AuditEvent, Review, SignOff
from tests.api.conftest import token_client
from tests.factories import PASSWORD, make_candidate
from tests.reviews.conftest import Personas, reload, to_decision_pending, to_in_review, vote

S = Candidate.Status
REVIEW = {
    "recommendation": Decision.GUARDRAILS,
    "evidence_level": "L2",
    "decision_stage": "S2",
    "rationale": "Phase 2 data; label warnings to confirm.",
    "proposed_conditions": ["Confirm label warnings"],
}


def url(candidate: Candidate, action: str) -> str:
    return f"/api/v1/candidates/{candidate.pk}/{action}/"


def test_walk_from_predicted_to_cleared_through_the_api(people: Personas, candidate: Candidate) -> None:
    p = people
    curator, r1, r2, approver = (token_client(u) for u in (p.curator, p.reviewer1, p.reviewer2, p.approver))
    steps: list[tuple[APIClient, str, dict[str, Any], int, str]] = [
        (curator, "triage", {}, 200, S.TRIAGED),
        (curator, "start-curation", {}, 200, S.IN_CURATION),
        (curator, "assign", {"reviewers": ["reviewer1", "reviewer2"], "due_date": "2030-01-01"}, 200, S.IN_CURATION),
        (curator, "send-to-review", {}, 200, S.IN_REVIEW),
        (r1, "reviews", REVIEW, 201, S.IN_REVIEW),
        (r2, "reviews", REVIEW, 201, S.DECISION_PENDING),
        (approver, "sign-off", {"password": PASSWORD, "decision": Decision.GUARDRAILS}, 201, S.SIGNED_OFF),
    ]
    for client, action, body, code, status in steps:
        response = client.post(url(candidate, action), body, format="json")
        assert response.status_code == code, (action, response.json())
        assert reload(candidate).status == status
        assert response["ETag"] == f'"{reload(candidate).version}"'
    condition = candidate.conditions.get()
    response = curator.post(f"/api/v1/conditions/{condition.pk}/mark-met/", {"note": "https://x.org/l"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "met"
    assert reload(candidate).status == S.CLEARED

    query = {"candidate": str(candidate.pk), "action": "candidate."}
    events = curator.get("/api/v1/audit-events/", query).json()
    assert [(e["action"], e["to_state"]) for e in events["results"]] == [
        ("candidate.triage", "triaged"),
        ("candidate.start_curation", "in_curation"),
        ("candidate.send_to_review", "in_review"),
        ("candidate.review_agree", "decision_pending"),
        ("candidate.sign_off", "signed_off"),
        ("candidate.clear", "cleared"),
    ]
    signoff = approver.get(url(candidate, "signoffs")).json()[0]
    assert signoff["signer_name"] == "Approver Tester" and signoff["valid"] is True
    assert signoff["meaning"] == "Approved: Proceed with Guardrails"


def test_reopen_and_deprioritize_revive(people: Personas, candidate: Candidate) -> None:
    curator = token_client(people.curator)
    response = curator.post(url(candidate, "deprioritize"), {"reason_code": "other"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"reason_text": ['A reason of "Other" needs a text.']}
    assert curator.post(url(candidate, "deprioritize"), {"reason_code": "duplicate"}).status_code == 200
    assert reload(candidate).status == S.DEPRIORITIZED
    assert curator.post(url(candidate, "revive"), {"reason": "New data"}).status_code == 200
    assert reload(candidate).status == S.PREDICTED


def test_blind_reviews_through_the_api(people: Personas, candidate: Candidate) -> None:
    p = people
    to_in_review(candidate, p)
    r1, r2, approver = (token_client(u) for u in (p.reviewer1, p.reviewer2, p.approver))
    assert r1.post(url(candidate, "reviews"), REVIEW, format="json").status_code == 201

    assert [r["reviewer"]["username"] for r in r1.get(url(candidate, "reviews")).json()] == ["reviewer1"]
    assert r2.get(url(candidate, "reviews")).json() == []
    assert approver.get(url(candidate, "reviews")).json() == []
    detail = r2.get(f"/api/v1/candidates/{candidate.pk}/").json()
    assert detail["recommended_decision"] == "" and detail["evidence_level"] == "L5"
    events = r2.get("/api/v1/audit-events/", {"candidate": candidate.pk}).json()["results"]
    assert "guardrails" not in json.dumps(events) and "Phase 2 data" not in json.dumps(events)
    export = r2.get(f"/api/v1/dossiers/{candidate.dossier_id}/export.md").content.decode()
    assert "Phase 2 data" not in export
    assert "Round 1 review by" not in export and "consensus" not in export
    state = r2.get(url(candidate, "review-state")).json()
    assert state == {"round": 1, "assigned": 2, "submitted": 1, "blind": True, "consensus": None}

    assert r2.post(url(candidate, "reviews"), {**REVIEW, "rationale": "Mine"}, format="json").status_code == 201
    for client in (r1, r2, approver):
        assert len(client.get(url(candidate, "reviews")).json()) == 2
    export = approver.get(f"/api/v1/dossiers/{candidate.dossier_id}/export.md").content.decode()
    assert "Round 1 review by Reviewer1 Tester" in export and "Phase 2 data" in export
    assert "Round 1 consensus: consistent" in export
    state = approver.get(url(candidate, "review-state")).json()
    assert state == {"round": 1, "assigned": 2, "submitted": 2, "blind": False, "consensus": "consistent"}


def test_second_review_by_the_same_reviewer_is_refused(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    r1 = token_client(people.reviewer1)
    assert r1.post(url(candidate, "reviews"), REVIEW, format="json").status_code == 201
    response = r1.post(url(candidate, "reviews"), REVIEW, format="json")
    assert response.status_code == 403
    assert Review.objects.filter(reviewer=people.reviewer1).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({"decision": Decision.GUARDRAILS}, "password"), ({"decision": "guardrails", "password": "wrong"}, "password")],
)
def test_sign_off_needs_the_signers_password(
    people: Personas, candidate: Candidate, body: dict[str, str], field: str
) -> None:
    to_decision_pending(candidate, people)
    response = token_client(people.approver).post(url(candidate, "sign-off"), body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and field in response.json()["errors"]
    assert not SignOff.objects.exists()
    assert reload(candidate).status == S.DECISION_PENDING


def test_sign_off_gating_is_a_400_with_the_reason(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    response = token_client(people.approver).post(
        url(candidate, "sign-off"), {"password": PASSWORD, "decision": Decision.GO}, format="json"
    )
    assert response.status_code == 400
    assert "Go needs decision stage S3" in " ".join(response.json()["errors"]["decision"])


def test_stale_if_match_is_412_and_writes_nothing(people: Personas, candidate: Candidate) -> None:
    curator = token_client(people.curator)
    etag = curator.get(f"/api/v1/candidates/{candidate.pk}/")["ETag"]
    assert etag == f'"{candidate.version}"'
    response = curator.post(url(candidate, "triage"), {}, HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    new_etag = response["ETag"]
    assert new_etag != etag

    before = reload(candidate)
    response = curator.post(url(candidate, "start-curation"), {}, HTTP_IF_MATCH=etag)
    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"
    after = reload(candidate)
    assert (after.status, after.version) == (before.status, before.version) == (S.TRIAGED, before.version)
    assert curator.post(url(candidate, "start-curation"), {}, HTTP_IF_MATCH=new_etag).status_code == 200


def test_wrong_state_is_409_with_the_message(people: Personas, candidate: Candidate) -> None:
    response = token_client(people.curator).post(url(candidate, "start-curation"), {})
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "invalid_state"
    assert body["detail"].startswith(f"Cannot start curation candidate {candidate.pk}: it is predicted")


def test_conflict_is_resolved_through_the_api(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1, Decision.GUARDRAILS)
    vote(candidate, people.reviewer2, Decision.HOLD, level="L3")
    assert reload(candidate).status == S.IN_CONFLICT
    body = {"decision": "hold", "level": "L3", "stage": "S1", "note": "Wait for results."}
    response = token_client(people.reviewer3).post(url(candidate, "resolve-conflict"), body, format="json")
    assert response.status_code == 201 and response.json()["resolved_by"]["username"] == "reviewer3"
    assert reload(candidate).status == S.DECISION_PENDING


def test_comments_watch_conditions_and_actions(people: Personas, candidate: Candidate) -> None:
    viewer = token_client(people.viewer)
    response = viewer.post(url(candidate, "comments"), {"body": "@curator please check"}, format="json")
    assert response.status_code == 201 and response.json()["mentions"] == ["curator"]
    assert [c["body"] for c in viewer.get(url(candidate, "comments")).json()] == ["@curator please check"]
    assert viewer.get(url(candidate, "watch")).json() == {"watching": True}  # commenting watches
    assert viewer.delete(url(candidate, "watch")).json() == {"watching": False}
    assert viewer.get(url(candidate, "watch")).json() == {"watching": False}
    assert viewer.put(url(candidate, "watch")).json() == {"watching": True}
    assert [c["title"] for c in viewer.get(url(candidate, "conditions")).json()] == ["Confirm label warnings"]
    assert viewer.get(url(candidate, "actions")).json() == {"actions": ["comment", "watch"]}
    assert "triage" in token_client(people.curator).get(url(candidate, "actions")).json()["actions"]


def test_audit_events_are_read_only(people: Personas, candidate: Candidate, admin: User) -> None:
    token_client(people.curator).post(url(candidate, "triage"), {})
    client = token_client(admin)
    event = client.get("/api/v1/audit-events/", {"candidate": candidate.pk}).json()["results"][-1]
    assert event["action"] == "candidate.triage" and event["actor"]["username"] == "curator"
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(f"/api/v1/audit-events/{event['id']}/").status_code == 405
    assert client.post("/api/v1/audit-events/", {}).status_code == 405
    assert AuditEvent.objects.filter(pk=event["id"]).exists()


@pytest.mark.parametrize(("fmt", "content_type"), [("md", "text/markdown"), ("html", "text/html"), ("json", "json")])
def test_export_carries_signatures_and_history(
    people: Personas, candidate: Candidate, fmt: str, content_type: str
) -> None:
    to_decision_pending(candidate, people)
    token_client(people.approver).post(
        url(candidate, "sign-off"), {"password": PASSWORD, "decision": "guardrails"}, format="json"
    )
    response = token_client(people.viewer).get(
        f"/api/v1/dossiers/{candidate.dossier_id}/export.{fmt}", {"candidate": candidate.pk}
    )
    assert response.status_code == 200
    assert content_type in response["Content-Type"]
    assert response["Content-Disposition"].startswith("attachment;")
    text = response.content.decode()
    assert "Approved: Proceed with Guardrails — signed by Approver Tester (approver)" in text
    assert "candidate.sign_off: decision_pending → signed_off by Approver Tester" in text
    if fmt == "json":
        review = json.loads(text)["review"]
        assert len(review["signatures"]) == 1 and review["decision_history"]


def test_page_download_and_command_carry_the_trail(people: Personas, candidate: Candidate, client) -> None:  # type: ignore[no-untyped-def]
    from io import StringIO

    from django.core.management import call_command

    to_decision_pending(candidate, people)
    token_client(people.approver).post(
        url(candidate, "sign-off"), {"password": PASSWORD, "decision": "guardrails"}, format="json"
    )
    client.force_login(people.viewer)
    page = client.get(f"/dossiers/{candidate.dossier_id}/export.md").content.decode()
    assert "## Review and Sign-off" in page and "signed by Approver Tester" in page
    out = StringIO()
    drug = candidate.dossier.drug.name
    call_command("export_dossier", drug, "--market", "IN", "--format", "md", stdout=out)
    assert "signed by Approver Tester" in out.getvalue()


def test_outsider_gets_404_on_export(people: Personas, candidate: Candidate) -> None:
    response = token_client(people.outsider).get(f"/api/v1/dossiers/{candidate.dossier_id}/export.md")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_signed_off_reopened_and_signed_again(people: Personas, candidate: Candidate) -> None:
    p = people
    to_decision_pending(candidate, p)
    approver, approver2 = token_client(p.approver), token_client(p.approver2)
    sign = {"password": PASSWORD, "decision": Decision.GUARDRAILS}
    assert approver.post(url(candidate, "sign-off"), sign, format="json").status_code == 201
    reopen = approver.post(url(candidate, "reopen"), {"reason": "New safety signal."}, format="json")
    assert reopen.status_code == 200 and reopen.json()["status"] == S.TRIAGED
    curator = token_client(p.curator)
    for action, body in [
        ("start-curation", {}),
        ("assign", {"reviewers": ["reviewer1", "reviewer3"]}),
        ("send-to-review", {}),
    ]:
        assert curator.post(url(candidate, action), body, format="json").status_code == 200, action
    for reviewer in (p.reviewer1, p.reviewer3):
        assert token_client(reviewer).post(url(candidate, "reviews"), REVIEW, format="json").status_code == 201
    # the first signer reviewed nothing, but a second approver signs round 2 just as well
    assert approver2.post(url(candidate, "sign-off"), sign, format="json").status_code == 201
    signoffs = curator.get(url(candidate, "signoffs")).json()
    assert [(s["round"], s["signer"]["username"], s["valid"]) for s in signoffs] == [
        (1, "approver", True),
        (2, "approver2", True),
    ]
    assert [r["round"] for r in curator.get(url(candidate, "reviews")).json()] == [1, 1, 2, 2]
    export = curator.get(f"/api/v1/dossiers/{candidate.dossier_id}/export.md").content.decode()
    assert "candidate.reopen: signed_off → triaged by Approver Tester — New safety signal." in export
    assert "Round 2 review by Reviewer3 Tester" in export


def test_stale_if_match_on_a_condition_is_412(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    approver = token_client(people.approver)
    stale = approver.get(f"/api/v1/candidates/{candidate.pk}/")["ETag"]
    approver.post(url(candidate, "sign-off"), {"password": PASSWORD, "decision": "guardrails"}, format="json")
    condition = candidate.conditions.get()
    path = f"/api/v1/conditions/{condition.pk}/waive/"
    response = approver.post(path, {"justification": "Covered."}, format="json", HTTP_IF_MATCH=stale)
    assert response.status_code == 412
    assert reload(candidate).status == S.SIGNED_OFF
    fresh = approver.get(f"/api/v1/candidates/{candidate.pk}/")["ETag"]
    response = approver.post(path, {"justification": "Covered."}, format="json", HTTP_IF_MATCH=fresh)
    assert response.status_code == 200 and response.json()["status"] == "waived"
    assert reload(candidate).status == S.CLEARED


def test_export_refuses_unknown_candidates(people: Personas, candidate: Candidate) -> None:
    client = token_client(people.viewer)
    base = f"/api/v1/dossiers/{candidate.dossier_id}/export.md"
    assert client.get(base, {"candidate": "abc"}).status_code == 404
    other = make_candidate()
    assert client.get(base, {"candidate": other.pk}).status_code == 404
    assert client.get(f"/api/v1/dossiers/{candidate.dossier_id}/export.pdf").json()["code"] == "not_found"
