from django.urls import path

from dossiers import views

app_name = "dossiers"

urlpatterns = [
    path("", views.candidate_list, name="candidate_list"),
    path("candidates/<int:pk>/", views.candidate_detail, name="candidate_detail"),
    path("dossiers/<int:pk>/", views.dossier_detail, name="dossier_detail"),
    # Served by reviews.exports.dossier_export (listed first in portal/urls.py); kept here for its name.
    path("dossiers/<int:pk>/export.<str:fmt>", views.dossier_export, name="dossier_export"),
    path("drugs/<int:pk>/", views.drug_detail, name="drug_detail"),
    path("imports/", views.import_upload, name="import_upload"),
]
