"""The paging query parameters every list endpoint takes (the page size is capped)."""

from __future__ import annotations

from typing import Annotated

from litestar.params import QueryParameter

MAX_PAGE = 100

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, QueryParameter(ge=0)]
