"""Pagination shared by every list: `{next, previous, results}`, `?page_size=` up to 100.

Cursor pagination, so the cost of a page does not grow with how deep it is
and rows inserted meanwhile do not shift a client's pages.
"""

from rest_framework.pagination import CursorPagination


class PageSizeCursorPagination(CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
    ordering = "-created_at"
