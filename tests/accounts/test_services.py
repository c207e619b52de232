"""Account services: who may change roles, teams and activation, what is refused, what is recorded."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.services import (
    InvalidToken,
    token_authenticate,
    token_create,
    totp_disable,
    totp_enrol_confirm,
    totp_enrol_start,
    totp_verify,
    user_access_set,
    user_deactivate,
)
from portal.roles import Role
from reviews.models import AuditEvent
from tests.accounts.conftest import code_for, enrolled, wrong_code
from tests.factories import make_market, make_user

pytestmark = pytest.mark.django_db


def test_only_admins_change_access_or_deactivate() -> None:
    approver, rita = make_user("abe", Role.APPROVER), make_user("rita", Role.VIEWER)
    with pytest.raises(PermissionDenied):
        user_access_set(user_id=rita.pk, by=approver, roles=[], markets=[make_market()])
    with pytest.raises(PermissionDenied):
        user_deactivate(user_id=rita.pk, by=approver)
    with pytest.raises(PermissionDenied):
        totp_disable(user_id=rita.pk, by=approver)
    rita.refresh_from_db()
    assert rita.is_active and not AuditEvent.objects.exists()


def test_access_set_refuses_a_group_that_is_no_role_and_keeps_hand_made_groups() -> None:
    boss = make_user("boss", Role.ADMIN)
    rita = make_user("rita", Role.VIEWER)
    club = Group.objects.create(name="book club")
    with pytest.raises(ValidationError, match="Not a role: book club"):
        user_access_set(user_id=rita.pk, by=boss, roles=[club], markets=[])
    rita.groups.add(club)
    user_access_set(user_id=rita.pk, by=boss, roles=[Group.objects.get(name="curator")], markets=[])
    assert sorted(rita.groups.values_list("name", flat=True)) == ["book club", "curator"]
    assert AuditEvent.objects.get().changes == {"roles": [["viewer"], ["curator"]]}


def test_deactivated_users_tokens_stop_working_and_a_second_deactivation_records_nothing() -> None:
    boss, rita = make_user("boss", Role.ADMIN), make_user("rita", Role.VIEWER)
    _, raw = token_create(user=rita, name="script")
    user_deactivate(user_id=rita.pk, by=boss, reason="left the company")
    user_deactivate(user_id=rita.pk, by=boss)
    with pytest.raises(InvalidToken, match="inactive"):
        token_authenticate(raw=raw)
    event = AuditEvent.objects.get()
    assert (event.action, event.reason) == ("user.deactivate", "left the company")


def test_enrol_confirm_without_a_started_set_up_is_refused() -> None:
    rita = make_user("rita", Role.VIEWER)
    with pytest.raises(ValidationError, match="no set-up in progress"):
        totp_enrol_confirm(user=rita, code="123456")


def test_a_failed_code_is_counted_even_though_the_service_raises() -> None:
    rita = make_user("rita", Role.VIEWER)
    device = totp_enrol_start(user=rita)
    with pytest.raises(ValidationError):
        totp_enrol_confirm(user=rita, code=wrong_code(device))
    device.refresh_from_db()
    assert device.throttling_failure_count == 1 and not device.confirmed


def test_verify_accepts_the_current_code_once() -> None:
    rita = make_user("rita", Role.VIEWER)
    device = enrolled(rita)
    code = code_for(device)
    assert totp_verify(user=rita, code=f"{code[:3]} {code[3:]}") == device
    with pytest.raises(ValidationError, match="not valid"):
        totp_verify(user=rita, code=code)


def test_verify_without_a_device_is_refused() -> None:
    with pytest.raises(ValidationError, match="not set up"):
        totp_verify(user=make_user("rita", Role.VIEWER), code="123456")


def test_admin_resets_a_lost_authenticator_without_a_code() -> None:
    boss, rita = make_user("boss", Role.ADMIN), make_user("rita", Role.VIEWER)
    enrolled(rita)
    totp_disable(user_id=rita.pk, by=boss)
    assert not TOTPDevice.objects.filter(user=rita).exists()
    assert AuditEvent.objects.get().actor == boss
