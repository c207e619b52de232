"""The page where a user chooses how review emails reach them (immediately, daily digest, off)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from reviews.models import NotificationPreference
from reviews.notifications import notification_preference_set, preference_of


class NotificationSettingsForm(forms.Form):
    delivery = forms.ChoiceField(
        choices=NotificationPreference.Delivery.choices, widget=forms.RadioSelect, label="Review emails"
    )


@login_required
def notification_settings(request: HttpRequest) -> HttpResponse:
    """Show and change the user's delivery choice."""
    user = request.user
    assert isinstance(user, User)
    form = NotificationSettingsForm(request.POST or None, initial={"delivery": preference_of(user)})
    if request.method == "POST" and form.is_valid():
        preference = notification_preference_set(user=user, delivery=form.cleaned_data["delivery"])
        messages.success(request, f"Review emails: {preference.get_delivery_display()}.")
        return redirect("notification_settings")
    return render(request, "reviews/notification_settings.html", {"form": form})
