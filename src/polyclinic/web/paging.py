"""The paging query parameters every list endpoint takes (both bounded: the page size by
MAX_PAGE, the offset by what PostgreSQL takes without complaint)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

from polyclinic.web.limits import INT32_MAX

MAX_PAGE = 100
MAX_OFFSET = INT32_MAX

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)]
