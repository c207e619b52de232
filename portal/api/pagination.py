"""Pagination: numbered pages by default, a cursor for the large prediction table (no COUNT(*))."""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import CursorPagination, PageNumberPagination


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
