"""Password reset by email with Django's views: the email, the link, the new password, and no account probing."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from portal.roles import Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

RESET = reverse("password_reset")
DONE = reverse("password_reset_done")
NEW_PASSWORD = "a-fresh-Passphrase-42"


def reset_link(settings) -> str:  # type: ignore[no-untyped-def]
    (message,) = mail.outbox
    match = re.search(re.escape(settings.SITE_URL) + r"(/accounts/password_reset/[^/\s]+/[^/\s]+/)", message.body)
    assert match, message.body
    return str(match.group(1))


def test_login_page_links_to_the_reset_page() -> None:
    page = Client().get(reverse("login")).content.decode()
    assert f'href="{RESET}"' in page
    assert "Reset password" in Client().get(RESET).content.decode()


def test_reset_email_is_sent_with_text_and_html(settings) -> None:  # type: ignore[no-untyped-def]
    settings.SITE_URL = "https://portal.example.org"
    make_user("rita", Role.REVIEWER, email="rita@example.org")
    response = Client().post(RESET, {"email": "rita@example.org"})
    assert response.status_code == 302 and response["Location"] == DONE
    (message,) = mail.outbox
    assert message.to == ["rita@example.org"]
    assert message.subject == "Reset your password for the Repurposing review portal"
    assert "Hello Rita Tester" in message.body and '"rita"' in message.body
    link = reset_link(settings)
    ((html, mimetype),) = message.alternatives  # type: ignore[attr-defined]
    assert mimetype == "text/html" and f'href="https://portal.example.org{link}"' in html


def test_the_link_sets_a_new_password_once(settings) -> None:  # type: ignore[no-untyped-def]
    user = make_user("rita", Role.REVIEWER, email="rita@example.org")
    client = Client()
    client.post(RESET, {"email": "RITA@example.org"})  # the address is matched without regard to case
    link = reset_link(settings)
    opened = client.get(link)
    assert opened.status_code == 302 and opened["Location"].endswith("/set-password/")
    form = client.get(opened["Location"])
    assert "Choose a new password" in form.content.decode()
    done = client.post(opened["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == reverse("password_reset_complete")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) and not user.check_password(PASSWORD)
    assert Client().login(username="rita", password=NEW_PASSWORD)
    # Used once: the same link no longer works.
    again = Client().get(link, follow=True)
    assert "Link not valid" in again.content.decode()


def test_mismatched_passwords_change_nothing(settings) -> None:  # type: ignore[no-untyped-def]
    user = make_user("rita", Role.REVIEWER, email="rita@example.org")
    client = Client()
    client.post(RESET, {"email": "rita@example.org"})
    opened = client.get(reset_link(settings))
    response = client.post(opened["Location"], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"})
    assert response.status_code == 200 and "didn’t match" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_unknown_or_inactive_addresses_reveal_nothing() -> None:
    make_user("gone", Role.VIEWER, email="gone@example.org", is_active=False)
    known = Client().post(RESET, {"email": "gone@example.org"}, follow=True)
    unknown = Client().post(RESET, {"email": "nobody@example.org"}, follow=True)
    assert mail.outbox == []
    assert known.redirect_chain == unknown.redirect_chain == [(DONE, 302)]
    assert known.content == unknown.content


def test_a_forged_link_is_refused() -> None:
    make_user("rita", Role.REVIEWER, email="rita@example.org")
    page = Client().get(reverse("password_reset_confirm", args=["MQ", "abc-def"]))
    assert page.status_code == 200 and "Link not valid" in page.content.decode()
