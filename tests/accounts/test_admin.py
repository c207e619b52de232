"""Users in Django admin: roles and market teams on the user page, no deletion, audited deactivation."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from dossiers.models import Market
from portal.roles import Role
from reviews.models import AuditEvent
from tests.accounts.conftest import enrolled
from tests.factories import make_market, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:auth_user_changelist")


@pytest.fixture
def boss() -> User:
    return make_user("boss", Role.ADMIN, is_staff=True)


def admin_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def change_form_data(user: User, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "groups": [g.pk for g in user.groups.all()],
        "markets": [m.pk for m in Market.objects.filter(members=user)],
        "is_staff": "",
        "is_superuser": "",
        "user_permissions": [],
    }
    data.update(overrides)
    return data


def test_user_page_edits_roles_and_market_teams_and_records_the_change(boss: User) -> None:
    india, canada = make_market("IN", "India"), make_market("CA", "Canada")
    user = make_user("rita", Role.VIEWER, markets=[india])
    client = admin_client(boss)
    url = reverse("admin:auth_user_change", args=[user.pk])
    page = client.get(url).content.decode()
    assert "Roles and market teams" in page and 'name="markets"' in page
    assert f'<option value="{india.pk}" selected>' in page

    reviewer = Group.objects.get(name=Role.REVIEWER)
    response = client.post(url, change_form_data(user, groups=[reviewer.pk], markets=[india.pk, canada.pk]))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert set(Market.objects.filter(members=user)) == {india, canada}
    event = AuditEvent.objects.get(action="user.access")
    assert event.actor == boss and event.object_id == str(user.pk)
    assert event.changes == {"roles": [["viewer"], ["reviewer"]], "markets": [["IN"], ["CA", "IN"]]}

    # Saving again without changes writes no audit row.
    client.post(url, change_form_data(user))
    assert AuditEvent.objects.filter(action="user.access").count() == 1


def test_only_role_groups_are_offered_as_roles(boss: User) -> None:
    Group.objects.create(name="book club")
    user = make_user("rita", Role.VIEWER)
    page = admin_client(boss).get(reverse("admin:auth_user_change", args=[user.pk])).content.decode()
    assert "book club" not in page
    for role in Role:
        assert f">{role.value}</option>" in page


def test_users_cannot_be_deleted(boss: User) -> None:
    user = make_user("rita", Role.VIEWER)
    client = admin_client(boss)
    assert client.get(reverse("admin:auth_user_delete", args=[user.pk])).status_code == 403
    page = client.get(CHANGELIST).content.decode()
    assert "delete_selected" not in page and 'value="deactivate"' in page
    response = client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [user.pk]})
    assert response.status_code in (200, 302)
    assert User.objects.filter(pk=user.pk).exists()


def test_deactivate_action_calls_the_service_and_records_it(boss: User) -> None:
    rita, sam = make_user("rita", Role.VIEWER), make_user("sam", Role.CURATOR)
    client = admin_client(boss)
    response = client.post(
        CHANGELIST, {"action": "deactivate", "_selected_action": [rita.pk, sam.pk, boss.pk]}, follow=True
    )
    page = response.content.decode()
    assert "2 user(s) deactivated" in page and "You cannot deactivate yourself" in page
    assert list(User.objects.filter(is_active=False).order_by("username").values_list("username", flat=True)) == [
        "rita",
        "sam",
    ]
    events = AuditEvent.objects.filter(action="user.deactivate").order_by("object_id")
    assert [(e.actor, e.object_id, e.changes) for e in events] == [
        (boss, str(rita.pk), {"is_active": [True, False]}),
        (boss, str(sam.pk), {"is_active": [True, False]}),
    ]
    assert not Client().login(username="rita", password="correct-horse-battery-staple")

    client.post(CHANGELIST, {"action": "reactivate", "_selected_action": [rita.pk]})
    rita.refresh_from_db()
    assert rita.is_active
    assert AuditEvent.objects.filter(action="user.reactivate", object_id=str(rita.pk)).count() == 1


def test_activation_is_not_a_form_field(boss: User) -> None:
    user = make_user("rita", Role.VIEWER)
    url = reverse("admin:auth_user_change", args=[user.pk])
    admin_client(boss).post(url, change_form_data(user, is_active=""))
    user.refresh_from_db()
    assert user.is_active


def test_reset_two_factor_action(boss: User) -> None:
    user = make_user("abe", Role.APPROVER)
    enrolled(user)
    client = admin_client(boss)
    assert ">2FA<" in client.get(CHANGELIST).content.decode()
    client.post(CHANGELIST, {"action": "reset_two_factor", "_selected_action": [user.pk]})
    assert not user.totpdevice_set.exists()  # type: ignore[attr-defined]
    event = AuditEvent.objects.get(action="user.two_factor_off")
    assert event.actor == boss and event.object_id == str(user.pk)


def test_user_list_query_count_does_not_grow_with_users(boss: User, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    client = admin_client(boss)
    india = make_market()
    for i in range(3):
        make_user(f"few{i}", Role.VIEWER, markets=[india])
    client.get(CHANGELIST)
    with django_assert_max_num_queries(12) as small:
        client.get(CHANGELIST)
    for i in range(20):
        make_user(f"many{i}", Role.REVIEWER, markets=[india])
    with django_assert_max_num_queries(len(small)):
        assert client.get(CHANGELIST).content.decode().count("many") >= 20


def test_non_admin_staff_cannot_open_users() -> None:
    curator = make_user("cora", Role.CURATOR, is_staff=True)
    assert admin_client(curator).get(CHANGELIST).status_code == 403


def test_authenticator_secrets_are_not_in_admin(boss: User) -> None:
    assert not admin.site.is_registered(TOTPDevice)
    page = admin_client(boss).get(reverse("admin:index")).content.decode()
    assert "TOTP" not in page
