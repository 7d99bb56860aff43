"""Mem0's page / page_size paging over memstream's limit / offset, with its next / previous links.
Pure."""

from __future__ import annotations

from yarl import URL

DEFAULT_PAGE_SIZE = 100


def window(page: int | None, page_size: int | None) -> tuple[int, int, int, int]:
    """(page, page_size, limit, offset) with Mem0's defaults (page 1, 100 per page)."""
    page = page or 1
    size = page_size or DEFAULT_PAGE_SIZE
    return page, size, size, (page - 1) * size


def links(url: URL, page: int, size: int, count: int) -> tuple[str | None, str | None]:
    """The next and previous pages' URLs (the request's own URL with ``page`` changed), or None
    where there is no such page."""
    pages = max(1, -(-count // size))
    following = str(url.update_query(page=page + 1, page_size=size)) if page < pages else None
    preceding = str(url.update_query(page=min(page - 1, pages), page_size=size)) if page > 1 else None
    return following, preceding
