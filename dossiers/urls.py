from django.urls import path

from dossiers import refresh_views, views

app_name = "dossiers"

urlpatterns = [
    path("", views.candidate_list, name="candidate_list"),
    path("candidates/<int:pk>/", views.candidate_detail, name="candidate_detail"),
    path("dossiers/<int:pk>/", views.dossier_detail, name="dossier_detail"),
    path("drugs/<int:pk>/", views.drug_detail, name="drug_detail"),
    path("candidates/<int:pk>/refresh/", refresh_views.candidate_refresh, name="candidate_refresh"),
    path("candidates/<int:pk>/evidence-seen/", refresh_views.candidate_evidence_seen, name="candidate_evidence_seen"),
    path("evidence/<str:kind>/<int:pk>/curate/", refresh_views.evidence_curate, name="evidence_curate"),
    path("imports/", views.import_upload, name="import_upload"),
]
