"""One JSON error shape for every API error: `{"detail": str, "code": str, "errors": {field: [str]}}`.

Set as DRF's EXCEPTION_HANDLER. Django's own PermissionDenied, ValidationError (raised by services),
Http404 and DoesNotExist are translated first, so services stay free of DRF.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

# A service refusing a write made against an older version raises ValidationError(..., code=STALE_CODE).
STALE_CODE = "stale"
NON_FIELD = "non_field_errors"


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object changed since you read it; fetch it again and reapply your change."
    default_code = "precondition_failed"


class InvalidCursor(exceptions.APIException):
    """A `cursor` query value that is not one the API handed out (a 400, not DRF's 404)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid cursor: follow the next and previous links exactly as the API gave them."
    default_code = "invalid_cursor"


class Conflict(exceptions.APIException):
    """The object is not in a state that allows this action (e.g. triaging a signed-off candidate)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The object is not in a state that allows this action."
    default_code = "invalid_state"


def error_body(detail: str, code: str, errors: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"detail": detail, "code": code, "errors": errors or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _translate(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return _server_error(exc)
    assert isinstance(exc, exceptions.APIException)  # noqa: S101  (DRF only answers those)
    response.data = _shape(exc)
    return response


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, DjangoValidationError):
        plain_errors = exc.error_list if hasattr(exc, "error_list") else []
        if any(error.code == STALE_CODE for error in plain_errors):
            return PreconditionFailed(" ".join(exc.messages))
        return exceptions.ValidationError(as_serializer_error(exc))
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404 | ObjectDoesNotExist):
        return exceptions.NotFound()
    return exc


def _shape(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = _field_errors(exc.detail)
        non_field = errors.get(NON_FIELD)
        message = " ".join(non_field) if non_field and len(errors) == 1 else "The request has invalid fields."
        return error_body(message, "invalid", errors)
    detail = exc.detail
    text = str(detail) if not isinstance(detail, list | dict) else str(exc.default_detail)
    code = getattr(detail, "code", None) or exc.default_code
    return error_body(text, str(code))


def _field_errors(detail: Any) -> dict[str, list[str]]:
    """Flatten DRF's nested error detail into {field or dotted.path: [messages]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for field, value in detail.items():
            for path, messages in _field_errors(value).items():
                key = str(field) if path == NON_FIELD else f"{field}.{path}"
                flat.setdefault(key, []).extend(messages)
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {NON_FIELD: [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            for path, messages in _field_errors(item).items():
                key = str(index) if path == NON_FIELD else f"{index}.{path}"
                flat.setdefault(key, []).extend(messages)
        return flat
    return {NON_FIELD: [str(detail)]}


def _server_error(exc: Exception) -> Response | None:
    if settings.DEBUG:
        return None  # Django's debug page shows the traceback
    logger.error("Unhandled API error", exc_info=exc)
    set_rollback()
    body = error_body("Internal server error.", "server_error")
    return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


@csrf_exempt  # a POST to an unknown URL is a 404 in the error shape, not the CSRF middleware's HTML 403
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The API's answer to a URL no endpoint matches, in the same shape as every other error."""
    return JsonResponse(error_body("No such API endpoint.", "not_found"), status=404)
