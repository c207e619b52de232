"""DRF glue for API tokens: the `Authorization: Bearer <token>` authenticator and the scope check."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.models import ApiToken
from accounts.services import InvalidToken, token_authenticate

KEYWORD = "Bearer"


class ApiTokenAuthentication(BaseAuthentication):
    """Authenticate `Authorization: Bearer prt_…`; a bad, revoked or expired token is a 401."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].decode(errors="replace").lower() != KEYWORD.lower():
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(f"Malformed Authorization header; send: {KEYWORD} <token>.")
        try:
            token = token_authenticate(raw=parts[1].decode(errors="replace"))
        except InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from None
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to an unauthenticated request.
        return f'{KEYWORD} realm="api"'


class TokenScopePermission(BasePermission):
    """A read-scope token may only use safe methods; sessions and write tokens pass through."""

    message = "This API token has read scope; it cannot change anything."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        return not isinstance(token, ApiToken) or token.allows(request.method or "GET")
