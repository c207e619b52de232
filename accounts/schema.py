"""OpenAPI description of the token authentication (drf-spectacular extension, loaded by the app)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from your profile page: `Authorization: Bearer prt_…`. "
            "Read-scope tokens may only use GET, HEAD and OPTIONS.",
        }
