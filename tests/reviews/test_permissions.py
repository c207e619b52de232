"""Permission predicates, allowed actions per persona and state, and review blindness."""

from __future__ import annotations

import pytest

from dossiers.models import Candidate, Decision
from reviews import permissions as perms
from reviews.selectors import consensus_state, reviews_visible_to
from tests.reviews.conftest import Personas, reload, to_decision_pending, to_in_review, to_signed_off, vote

EVERYONE = ("curator", "reviewer1", "reviewer2", "reviewer3", "approver", "viewer", "outsider")


def _actions(people: Personas, candidate: Candidate) -> dict[str, set[str]]:
    fresh = reload(candidate)
    return {name: perms.allowed_actions(getattr(people, name), fresh) for name in EVERYONE}


def test_allowed_actions_when_predicted(people: Personas, candidate: Candidate) -> None:
    actions = _actions(people, candidate)
    assert actions["curator"] == {"triage", "deprioritize", "comment", "watch"}
    for name in ("reviewer1", "approver", "viewer"):
        assert actions[name] == {"comment", "watch"}
    assert actions["outsider"] == set()


def test_allowed_actions_in_review(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    actions = _actions(people, candidate)
    assert actions["reviewer1"] == actions["reviewer2"] == {"review_submit", "comment", "watch"}
    assert actions["reviewer3"] == {"comment", "watch"}  # not assigned
    assert actions["curator"] == {"review_assign", "comment", "watch"}
    assert actions["approver"] == {"review_assign", "comment", "watch"}
    assert actions["outsider"] == set()
    vote(candidate, people.reviewer1)
    assert "review_submit" not in perms.allowed_actions(people.reviewer1, reload(candidate))


def test_allowed_actions_when_decision_pending(people: Personas, candidate: Candidate) -> None:
    to_decision_pending(candidate, people)
    actions = _actions(people, candidate)
    assert actions["approver"] == {"sign_off", "comment", "watch"}
    for name in ("curator", "reviewer1", "reviewer2", "reviewer3", "viewer"):
        assert "sign_off" not in actions[name]
    assert actions["outsider"] == set()


def test_allowed_actions_when_signed_off(people: Personas, candidate: Candidate) -> None:
    to_signed_off(candidate, people)
    actions = _actions(people, candidate)
    assert actions["approver"] == {"condition_mark_met", "condition_waive", "reopen", "comment", "watch"}
    assert actions["curator"] == {"condition_mark_met", "comment", "watch"}
    assert actions["reviewer3"] == {"comment", "watch"}


def test_conflict_resolvers(people: Personas, candidate: Candidate) -> None:
    to_in_review(candidate, people)
    vote(candidate, people.reviewer1, Decision.GO)
    vote(candidate, people.reviewer2, Decision.HOLD)
    fresh = reload(candidate)
    resolvers = {name for name in EVERYONE if perms.can_resolve_conflict(getattr(people, name), fresh)}
    assert resolvers == {"reviewer3", "approver"}


@pytest.mark.parametrize(
    "predicate",
    [
        perms.can_triage,
        perms.can_curate,
        perms.can_assign,
        perms.can_review,
        perms.can_see_other_reviews,
        perms.can_resolve_conflict,
        perms.can_sign_off,
        perms.can_waive_condition,
        perms.can_reopen,
        perms.can_comment,
    ],
)
def test_outsider_and_inactive_users_are_refused_everything(people: Personas, candidate: Candidate, predicate) -> None:
    to_decision_pending(candidate, people)
    people.approver.is_active = False
    for user in (people.outsider, people.approver):
        assert predicate(user, reload(candidate)) is False


def test_reviews_are_blind_until_every_reviewer_submitted(people: Personas, candidate: Candidate) -> None:
    p = people
    to_in_review(candidate, p)
    vote(candidate, p.reviewer1)

    assert [r.reviewer for r in reviews_visible_to(p.reviewer1, candidate)] == [p.reviewer1]
    for name in ("reviewer2", "approver", "curator", "viewer", "outsider"):
        user = getattr(p, name)
        assert list(reviews_visible_to(user, candidate)) == [], name
        assert perms.can_see_other_reviews(user, candidate) is False
    assert consensus_state(candidate) is None  # agreement would reveal the vote

    vote(candidate, p.reviewer2)
    for name in ("reviewer1", "reviewer2", "approver", "curator", "viewer"):
        visible = {r.reviewer.username for r in reviews_visible_to(getattr(p, name), candidate)}
        assert visible == {"reviewer1", "reviewer2"}, name
    assert list(reviews_visible_to(p.outsider, candidate)) == []
    assert consensus_state(candidate) == "consistent"


def test_reviews_visible_to_query_count(people: Personas, candidate: Candidate, django_assert_max_num_queries) -> None:
    to_decision_pending(candidate, people)
    fresh = Candidate.objects.select_related("dossier__market").get(pk=candidate.pk)
    with django_assert_max_num_queries(8):
        rows = [(r.reviewer.username, r.round.number) for r in reviews_visible_to(people.approver, fresh)]
    assert len(rows) == 2
