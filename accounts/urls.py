from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.profile, name="profile"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="token_revoke"),
]
