"""ETag / If-Match for objects with a `version` field (Candidate, Dossier).

GET answers with `ETag: "<version>"`. An update sends it back in `If-Match`; a stale one is refused
with 412 before the service runs. The service must still compare `expected_version` under its row lock
(two writers may pass the early check together) and raise ValidationError(code="stale") — which the
exception handler also turns into 412.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.utils.http import parse_etags
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from portal.api.errors import PreconditionFailed

IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description='The ETag of your last read of the object (the candidate for its evidence), e.g. "6". If it '
    "changed since, nothing is written (412). Without it the write applies to the current version.",
)


class Versioned(Protocol):
    pk: Any
    version: int


def etag_for(obj: Versioned) -> str:
    return f'"{obj.version}"'


def with_etag(response: Response, obj: Versioned) -> Response:
    response["ETag"] = etag_for(obj)
    return response


def expected_version(request: Request, obj: Versioned) -> int | None:
    """The version the client last read, from If-Match; None when it sent none. Stale → 412."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        return None
    tags = parse_etags(header)
    if "*" in tags:
        return None
    if etag_for(obj) not in tags:
        name = type(obj).__name__.lower()
        raise PreconditionFailed(
            f"The {name} changed since you read it (If-Match {header}, now {etag_for(obj)}); "
            "fetch it again and reapply your change. Nothing was written."
        )
    return obj.version


class ETagMixin:
    """For a GenericAPIView/viewset over a versioned model: `retrieve` sends the ETag.

    Update actions call `self.expected_version(obj)` and pass the result to the service as
    `expected_version=`, then answer with `with_etag(Response(...), updated)`.
    """

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()  # type: ignore[attr-defined]
        response = Response(self.get_serializer(instance).data)  # type: ignore[attr-defined]
        return with_etag(response, instance)

    def expected_version(self, obj: Versioned) -> int | None:
        return expected_version(self.request, obj)  # type: ignore[attr-defined]
