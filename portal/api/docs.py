"""The schema and the interactive docs, with the API's error shape and nothing loaded from another host.

drf-spectacular's views answer errors with the renderer they negotiated: YAML for the schema, a bare
"401 Unauthorized" HTML page for the docs. Here every error is the one JSON shape, except that a browser
without a session is sent to the login page from the docs pages, as from every other page of the portal.
The docs' assets come from drf-spectacular-sidecar (static files); ReDoc's stock template also pulls
Google Fonts, so its head is replaced, and Swagger UI is told not to call the online validator.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.template import engines
from django.template.backends.django import Template
from drf_spectacular.settings import patched_settings, spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.response import Response

# The stock template's body, without its <link>s to fonts.googleapis.com / fonts.gstatic.com.
REDOC_TEMPLATE = """{% extends "drf_spectacular/redoc.html" %}{% block head %}
    <title>{{ title|default:"Redoc" }}</title>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <style>body { margin: 0; padding: 0; }</style>
{% endblock head %}"""


class JsonErrorsMixin:
    """Render any error response as JSON, whatever renderer the view negotiated for its success."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if isinstance(response, Response) and response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class LoginRedirectMixin(JsonErrorsMixin):
    """HTML pages: no credentials at all → the login page, then back; any other error → JSON."""

    request: Any

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.NotAuthenticated):
            # DRF passes any HttpResponse through; the stubs only know Response.
            return redirect_to_login(self.request.get_full_path())  # type: ignore[return-value]
        return super().handle_exception(exc)  # type: ignore[misc]


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    """The OpenAPI document (YAML by default, JSON with `?format=json`)."""


class SwaggerView(LoginRedirectMixin, SpectacularSwaggerView):
    """Swagger UI from bundled assets."""

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        # Swagger UI would otherwise send the schema URL to validator.swagger.io.
        ui_settings = {**spectacular_settings.SWAGGER_UI_SETTINGS, "validatorUrl": None}
        with patched_settings({"SWAGGER_UI_SETTINGS": ui_settings}):
            return super().get(request, *args, **kwargs)


class InlineRedocRenderer(TemplateHTMLRenderer):
    """The ReDoc page from REDOC_TEMPLATE instead of a template file."""

    def resolve_template(self, template_names: Any) -> Template:
        return engines["django"].from_string(REDOC_TEMPLATE)  # type: ignore[return-value]


class RedocView(LoginRedirectMixin, SpectacularRedocView):
    """ReDoc from bundled assets, with the browser's own fonts."""

    renderer_classes = [InlineRedocRenderer]
