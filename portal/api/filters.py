"""Filter backends shared by the API's lists."""

from __future__ import annotations

from typing import Any

from django.db.models import F, OrderBy, QuerySet
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request


class NullsLastOrderingFilter(OrderingFilter):
    """`?ordering=`, with empty values last in either direction (as the pages sort), then by id.

    PostgreSQL puts NULL first in a descending sort, so `-txgnn_score` would list unscored candidates
    before the best ones; the id tie-break keeps pages stable when many values are equal or empty.
    """

    def filter_queryset(self, request: Request, queryset: QuerySet[Any], view: Any) -> QuerySet[Any]:
        ordering = self.get_ordering(request, queryset, view)
        if not ordering:
            return queryset
        terms = [_nulls_last(name) for name in ordering]
        if not {"id", "pk", "-id", "-pk"} & set(ordering):
            terms.append(F("id").asc())
        return queryset.order_by(*terms)


def _nulls_last(name: str) -> OrderBy:
    if name.startswith("-"):
        return F(name[1:]).desc(nulls_last=True)
    return F(name).asc(nulls_last=True)
