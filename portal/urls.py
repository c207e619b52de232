from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import views as account_views
from reviews.exports import dossier_export
from reviews.notification_views import notification_settings

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password_reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password_reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password_reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("accounts/profile/", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("notifications/settings/", notification_settings, name="notification_settings"),
    path("api/v1/", include("portal.api.urls")),
    # Mounted here, not in dossiers.urls: the download carries the review trail, which only `reviews` builds.
    path("dossiers/<int:pk>/export.<str:fmt>", dossier_export, name="dossier_export"),
    # Before dossiers.urls: the candidate page of reviews is the dossier report plus the workflow panel.
    path("", include("reviews.urls")),
    path("", include("dossiers.urls")),
]
