"""Pagination: numbered pages by default, a cursor for the large prediction table (no COUNT(*))."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.request import Request

from portal.api.errors import InvalidCursor


class PagePagination(PageNumberPagination):
    """`?page=N&page_size=M`, M up to API_MAX_PAGE_SIZE."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return settings.API_MAX_PAGE_SIZE


class PredictionCursorPagination(CursorPagination):
    """Highest score first; unscored predictions last (see `PredictionViewSet.get_queryset`)."""

    ordering = ("-score_order", "id")
    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return settings.API_MAX_PAGE_SIZE

    def decode_cursor(self, request: Request) -> Any:
        """A garbled cursor is the client's mistake (400 invalid_cursor), not a missing page."""
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise InvalidCursor() from exc
