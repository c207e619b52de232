"""End to end in headless Chromium: five personas take one candidate from predicted to cleared through the pages.

Playwright's sync API runs in the test thread against pytest-django's live server (another thread of this
process), so the test may read the database directly to check each step.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from dossiers.models import Candidate, GuardrailCondition
from portal.roles import Role
from reviews.models import AuditEvent
from tests.factories import PASSWORD, make_candidate, make_dossier, make_drug, make_market, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The screenshots are copied here for people to look at, when the folder's parent exists (the team's
# machines); the test keeps all of them in its tmp dir either way.
SHARED_SCREENS = Path(os.environ.get("JOURNEY_SCREENS_DIR", "/work/notes/screens"))


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[object]:
    """Headless Chromium; Playwright's sync API keeps an event loop in this thread, so allow sync ORM here."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Journey:
    """Logs personas in, one browser context each, and keeps numbered screenshots."""

    def __init__(self, browser, base_url: str, shots: Path) -> None:
        self.browser, self.base_url, self.shots, self.count = browser, base_url, shots, 0

    def login(self, user: User):
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{self.base_url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("form.stacked button[type=submit]")
        page.wait_for_load_state()
        assert "/accounts/login/" not in page.url, f"{user.username} could not log in"
        return page

    def shot(self, page, name: str, *, full_page: bool = True, selector: str | None = None) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        if selector:
            page.locator(selector).screenshot(path=str(path))
        else:
            page.screenshot(path=str(path), full_page=full_page)
        return path


def status(candidate: Candidate) -> str:
    return Candidate.objects.get(pk=candidate.pk).status


def submit(page, card: str) -> None:
    page.click(f"#action-{card} button[type=submit]")
    page.wait_for_load_state()


def test_five_personas_take_a_candidate_from_predicted_to_cleared(browser, live_server, tmp_path: Path) -> None:
    india, canada = make_market("IN", "India"), make_market("CA", "Canada")
    curator = make_user("curator", Role.CURATOR, markets=[india], first_name="Carla", last_name="Curator")
    reviewer1 = make_user("reviewer1", Role.REVIEWER, markets=[india], first_name="Ravi", last_name="Reviewer")
    reviewer2 = make_user("reviewer2", Role.REVIEWER, markets=[india], first_name="Rhea", last_name="Reviewer")
    approver = make_user("approver", Role.APPROVER, markets=[india], first_name="Anil", last_name="Approver")
    outsider = make_user("outsider", Role.CURATOR, Role.REVIEWER, Role.APPROVER, markets=[canada])
    dossier = make_dossier(make_drug("Lenalidomide"), india, interaction_total=347)
    candidate = make_candidate(
        dossier,
        "Myeloid Leukemia",
        txgnn_score=0.9949,
        evidence_level="L2",
        summary="Lenalidomide is approved for del(5q) MDS; TxGNN predicts myeloid leukemia.",
    )
    condition = GuardrailCondition.objects.create(
        candidate=candidate, title="Confirm label warnings", owner=curator, due_date=dt.date(2030, 1, 1)
    )
    journey = Journey(browser, live_server.url, tmp_path)
    url = f"{live_server.url}/candidates/{candidate.pk}/"

    # Curator: triage, start curation, assign two reviewers, send to review.
    page = journey.login(curator)
    page.goto(url)
    journey.shot(page, "curator-predicted", full_page=False)
    submit(page, "triage")
    assert status(candidate) == Candidate.Status.TRIAGED
    submit(page, "start_curation")
    assert status(candidate) == Candidate.Status.IN_CURATION
    page.check(f"#action-review_assign input[value='{reviewer1.pk}']")
    page.check(f"#action-review_assign input[value='{reviewer2.pk}']")
    page.fill("#action-review_assign input[name=due_date]", "2030-01-01")
    journey.shot(page, "curator-assign", selector="#workflow")
    submit(page, "review_assign")
    assert "2 reviewer(s) assigned." in page.inner_text(".messages")
    submit(page, "send_to_review")
    assert status(candidate) == Candidate.Status.IN_REVIEW

    # Reviewer 1 votes; reviewer 2 cannot see that vote before casting their own.
    votes = {reviewer1: "Phase 2 data support it; watch the cytopenias.", reviewer2: "Label and phase 2 suffice."}
    for reviewer, rationale in votes.items():
        page = journey.login(reviewer)
        page.goto(url)
        if reviewer == reviewer2:
            assert "Reviews are blind until every assigned reviewer has submitted (1 of 2 in)" in page.content()
            assert votes[reviewer1] not in page.content()
            journey.shot(page, "reviewer2-blind", selector="#workflow")
        page.check("#action-review_submit input[name=recommendation][value=guardrails]")
        page.select_option("#action-review_submit select[name=evidence_level]", "L2")
        page.select_option("#action-review_submit select[name=decision_stage]", "S2")
        page.fill("#action-review_submit textarea[name=rationale]", rationale)
        page.fill("#action-review_submit textarea[name=proposed_conditions]", "Confirm label warnings")
        submit(page, "review_submit")
        assert "Your review is recorded." in page.inner_text(".messages")
    assert status(candidate) == Candidate.Status.DECISION_PENDING
    assert votes[reviewer1] in page.content()  # the round is complete: both votes are open now
    journey.shot(page, "reviewer2-both-reviews", selector="#workflow")

    # Approver: the dashboard lists it; sign with the password; mark the condition met.
    page = journey.login(approver)
    page.goto(f"{live_server.url}/dashboard/")
    assert "Myeloid Leukemia" in page.inner_text("#awaiting-signature")
    journey.shot(page, "approver-dashboard")
    page.goto(url)
    assert "Approved: Proceed with Guardrails" in page.inner_text("#action-sign_off")
    page.check("#action-sign_off input[name=decision][value=guardrails]")
    page.fill("#action-sign_off input[name=password]", "not my password")
    submit(page, "sign_off")
    assert "The password is not correct; nothing was signed." in page.inner_text("#action-sign_off")
    assert status(candidate) == Candidate.Status.DECISION_PENDING
    journey.shot(page, "approver-wrong-password", selector="#action-sign_off")
    page.check("#action-sign_off input[name=decision][value=guardrails]")
    page.fill("#action-sign_off input[name=password]", PASSWORD)
    journey.shot(page, "approver-sign-off", selector="#action-sign_off")
    submit(page, "sign_off")
    assert status(candidate) == Candidate.Status.SIGNED_OFF
    signature = page.inner_text("table.signatures")
    assert "Anil Approver" in signature and "Approved: Proceed with Guardrails" in signature and "Valid" in signature
    page.fill(f"#condition-{condition.pk} textarea[name=note]", "https://example.org/label-check")
    page.click(f"#condition-{condition.pk} button:has-text('Mark met')")
    page.wait_for_load_state()
    assert status(candidate) == Candidate.Status.CLEARED
    journey.shot(page, "approver-cleared-workflow", selector="#workflow")
    page.evaluate("window.scrollTo(0, 0)")
    journey.shot(page, "approver-cleared-top", full_page=False)
    page.goto(f"{live_server.url}/markets/IN/board/")
    journey.shot(page, "board")

    # Outsider of another market: the candidate does not exist for them.
    page = journey.login(outsider)
    response = page.goto(url)
    assert response is not None and response.status == 404
    page.goto(f"{live_server.url}/dashboard/")
    assert "Myeloid Leukemia" not in page.content()

    actions = list(AuditEvent.objects.filter(candidate=candidate, actor__isnull=False).values_list("action", flat=True))
    assert actions == [
        "candidate.triage",
        "candidate.start_curation",
        "review.assign",
        "review.assign",
        "candidate.send_to_review",
        "review.submit",
        "review.submit",
        "candidate.review_agree",
        "candidate.sign_off",
        "condition.mark_met",
        "candidate.clear",
    ]
    if SHARED_SCREENS.parent.is_dir():
        SHARED_SCREENS.mkdir(exist_ok=True)
        for old in SHARED_SCREENS.glob("journey-*.png"):
            old.unlink()
        for shot in sorted(tmp_path.glob("*.png")):
            shutil.copy(shot, SHARED_SCREENS / f"journey-{shot.name}")
