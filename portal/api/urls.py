"""`/api/v1/`: the schema, the docs (assets served locally by drf-spectacular-sidecar) and every resource."""

from django.urls import include, path, re_path

from dossiers import api_refresh
from dossiers.api import router as dossiers_router
from dossiers.api_imports import ImportCreateApi, ImportDetailApi
from portal.api.docs import RedocView, SchemaView, SwaggerView
from portal.api.errors import not_found
from reviews.api import DossierExportApi
from reviews.api import router as reviews_router

app_name = "api"

urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    path("redoc/", RedocView.as_view(url_name="api:schema"), name="redoc"),
    path("", include(dossiers_router.urls)),
    path("", include(reviews_router.urls)),
    path("", include(api_refresh.urlpatterns)),
    re_path(
        r"^dossiers/(?P<id>[0-9]+)/export\.(?P<fmt>md|html|json)$", DossierExportApi.as_view(), name="dossier-export"
    ),
    path("imports/", ImportCreateApi.as_view(), name="import-list"),
    path("imports/<int:pk>/", ImportDetailApi.as_view(), name="import-detail"),
    # Last: any other URL under /api/v1/ answers 404 in the API's error shape, not Django's HTML page.
    re_path(r"^", not_found),
]
