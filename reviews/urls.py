from django.urls import path

from reviews import views

app_name = "reviews"

urlpatterns = [
    # Served before dossiers.urls: the candidate page is the dossier report plus the workflow panel.
    path("candidates/<int:pk>/", views.candidate_detail, name="candidate_detail"),
    path("candidates/<int:pk>/triage/", views.triage, name="triage"),
    path("candidates/<int:pk>/deprioritize/", views.deprioritize, name="deprioritize"),
    path("candidates/<int:pk>/revive/", views.revive, name="revive"),
    path("candidates/<int:pk>/start-curation/", views.start_curation, name="start_curation"),
    path("candidates/<int:pk>/assign/", views.assign, name="assign"),
    path("candidates/<int:pk>/send-to-review/", views.send_to_review, name="send_to_review"),
    path("candidates/<int:pk>/review/", views.review, name="review"),
    path("candidates/<int:pk>/resolve/", views.resolve, name="resolve"),
    path("candidates/<int:pk>/sign-off/", views.sign_off, name="sign_off"),
    path("candidates/<int:pk>/conditions/<int:condition_pk>/met/", views.condition_met, name="condition_met"),
    path("candidates/<int:pk>/conditions/<int:condition_pk>/waive/", views.condition_waive, name="condition_waive"),
    path("candidates/<int:pk>/reopen/", views.reopen, name="reopen"),
    path("candidates/<int:pk>/comments/", views.comment, name="comment"),
    path("candidates/<int:pk>/watch/", views.watch, name="watch"),
    path("candidates/<int:pk>/unwatch/", views.unwatch, name="unwatch"),
    path("candidates/<int:pk>/audit.csv", views.audit_csv, name="audit_csv"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("markets/", views.boards, name="boards"),
    path("markets/<str:code>/board/", views.board, name="board"),
]
