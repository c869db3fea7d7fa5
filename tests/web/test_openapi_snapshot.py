"""The OpenAPI document is part of the public API: it changes only on purpose.

`tests/web/openapi.json` is the document as published. A change to a route, a schema or a
response shows here as a difference; when it is intended, write the snapshot again with
`UPDATE_OPENAPI_SNAPSHOT=1 uv run pytest tests/web/test_openapi_snapshot.py` and review the
diff like any other change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from litestar import Litestar

SNAPSHOT = Path(__file__).with_name("openapi.json")


def published(app: Litestar) -> str:
    return json.dumps(app.openapi_schema.to_schema(), indent=1, sort_keys=True) + "\n"


def test_openapi_document_is_unchanged(app: Litestar) -> None:
    document = published(app)
    if os.environ.get("UPDATE_OPENAPI_SNAPSHOT"):
        SNAPSHOT.write_text(document)
    expected = json.loads(SNAPSHOT.read_text())
    actual = json.loads(document)
    assert sorted(actual["paths"]) == sorted(expected["paths"])
    assert sorted(actual["components"]["schemas"]) == sorted(expected["components"]["schemas"])
    assert actual == expected
