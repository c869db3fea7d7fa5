"""The HTTP client of the HTTP providers: a bounded timeout, no redirects. One per send, so
it never outlives the event loop it was made on (the web app's, or a worker thread's)."""

from __future__ import annotations

import httpx

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# Failures after the request may have reached the provider.
AFTER_SENDING = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)
