"""The paging query parameters every list endpoint takes (the page size is capped)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

MAX_PAGE = 100
# Beyond any list's length; a larger offset would overflow PostgreSQL's bigint.
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)]
