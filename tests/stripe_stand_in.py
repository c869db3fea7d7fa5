"""A local server that speaks the part of Stripe's API Polyclinic calls, for the stripe SDK
to be pointed at (`STRIPE_API_BASE`). It checks the secret key, keeps customers, Checkout
sessions and subscriptions in memory, honours idempotency keys, refuses unknown prices and
customers as Stripe does, and produces the webhook events Stripe would send, for tests to
sign and deliver."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

MONTH = 30 * 86400


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`items[0][price]=p`) back into nested dicts and lists."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = result
        for part, following in itertools.pairwise(parts):
            container: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                node[index] = node[index] if node[index] is not None else container
                node = node[index]
            else:
                node = node.setdefault(part, container)
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return result


class StripeError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "message": message}}


@dataclass
class StripeStandIn:
    api_key: str = "sk_test_polyclinic_stand_in"
    known_prices: set[str] = field(default_factory=set)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    refuse_next: str | None = None
    _idempotent: dict[str, dict[str, Any]] = field(default_factory=dict)
    _clock: int = field(default_factory=lambda: int(time.time()))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> int:
        """Stripe's `created` times: strictly increasing, as events happen."""
        self._clock += 1
        return self._clock

    # --- the API -------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        if headers.get("authorization") != f"Bearer {self.api_key}":
            raise StripeError(401, "Invalid API Key provided", "authentication_error")
        with self._lock:
            self.requests.append((method, path, params))
            if self.refuse_next:
                message, self.refuse_next = self.refuse_next, None
                raise StripeError(402, message, "card_error")
            key = headers.get("idempotency-key")
            if key and key in self._idempotent:
                return self._idempotent[key]
            answer = self._route(method, path, params)
            if key:
                self._idempotent[key] = answer
            return answer

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if (method, path) == ("POST", "/v1/customers"):
            customer = {"id": f"cus_{uuid.uuid4().hex[:14]}", "object": "customer", **params}
            self.customers[customer["id"]] = customer
            return customer
        if (method, path) == ("POST", "/v1/checkout/sessions"):
            return self._checkout(params)
        if (method, path) == ("POST", "/v1/billing_portal/sessions"):
            self._customer(params.get("customer"))
            session_id = f"bps_{uuid.uuid4().hex[:14]}"
            return {
                "id": session_id,
                "object": "billing_portal.session",
                "customer": params["customer"],
                "return_url": params.get("return_url"),
                "url": f"https://billing.stand-in.test/p/{session_id}",
            }
        match = re.fullmatch(r"/v1/subscriptions/([\w]+)", path)
        if match:
            subscription = self.subscriptions.get(match.group(1))
            if subscription is None:
                raise StripeError(404, f"No such subscription: '{match.group(1)}'")
            if method == "GET":
                return subscription
            return self._update_subscription(subscription, params)
        raise StripeError(404, f"Unrecognized request URL ({method}: {path})")

    def _customer(self, customer_id: str | None) -> dict[str, Any]:
        if not customer_id or customer_id not in self.customers:
            raise StripeError(400, f"No such customer: '{customer_id}'")
        return self.customers[customer_id]

    def _price(self, price: str | None) -> str:
        if price not in self.known_prices:
            raise StripeError(400, f"No such price: '{price}'")
        return price

    def _checkout(self, params: dict[str, Any]) -> dict[str, Any]:
        self._customer(params.get("customer"))
        if params.get("mode") != "subscription":
            raise StripeError(400, "mode must be subscription here")
        items = params.get("line_items") or []
        if len(items) != 1:
            raise StripeError(400, "one line item expected")
        self._price(items[0].get("price"))
        session_id = f"cs_{uuid.uuid4().hex[:14]}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"),
            "line_items": items,
            "subscription_data": params.get("subscription_data", {}),
            "success_url": params.get("success_url"),
            "url": f"https://checkout.stand-in.test/c/{session_id}",
        }
        self.sessions[session_id] = session
        return session

    def _update_subscription(
        self, subscription: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        for item in params.get("items") or []:
            if item.get("id") != subscription["items"]["data"][0]["id"]:
                raise StripeError(400, f"No such subscription item: '{item.get('id')}'")
            subscription["items"]["data"][0]["price"] = {"id": self._price(item.get("price"))}
        if "cancel_at_period_end" in params:
            subscription["cancel_at_period_end"] = params["cancel_at_period_end"] == "true"
        if "proration_behavior" in params:
            subscription["last_proration_behavior"] = params["proration_behavior"]
        subscription.setdefault("metadata", {}).update(params.get("metadata") or {})
        subscription["pending_events"].append(
            self.event("customer.subscription.updated", self.public(subscription))
        )
        return self.public(subscription)

    # --- what a customer or time does, as the events Stripe sends ------------------------

    def complete_checkout(self, session_id: str) -> list[dict[str, Any]]:
        """The customer paid on the Checkout page."""
        session = self.sessions[session_id]
        session["status"] = "complete"
        now = self.tick()
        data = session["subscription_data"]
        trial_end = int(data["trial_end"]) if data.get("trial_end") else None
        end = trial_end or now + MONTH
        subscription_id = f"sub_{uuid.uuid4().hex[:14]}"
        subscription = {
            "id": subscription_id,
            "object": "subscription",
            "customer": session["customer"],
            "status": "trialing" if trial_end else "active",
            "cancel_at_period_end": False,
            "metadata": data.get("metadata", {}),
            "items": {
                "data": [
                    {
                        "id": f"si_{uuid.uuid4().hex[:14]}",
                        "price": {"id": session["line_items"][0]["price"]},
                        "current_period_start": now,
                        "current_period_end": end,
                    }
                ]
            },
            "pending_events": [],
        }
        self.subscriptions[subscription_id] = subscription
        session["subscription"] = subscription_id
        return [
            self.event("checkout.session.completed", {**session}),
            self.event("customer.subscription.created", self.public(subscription)),
            self.event("invoice.paid", self._invoice(subscription)),
        ]

    def renew(self, subscription_id: str, *, paid: bool = True) -> list[dict[str, Any]]:
        """The period ends: a new one starts and its invoice is paid, or fails."""
        subscription = self.subscriptions[subscription_id]
        item = subscription["items"]["data"][0]
        if subscription["cancel_at_period_end"]:
            subscription["status"] = "canceled"
            return [self.event("customer.subscription.deleted", self.public(subscription))]
        item["current_period_start"] = item["current_period_end"]
        item["current_period_end"] = item["current_period_start"] + MONTH
        subscription["status"] = "active" if paid else "past_due"
        return [
            self.event("customer.subscription.updated", self.public(subscription)),
            self.event(
                "invoice.paid" if paid else "invoice.payment_failed", self._invoice(subscription)
            ),
        ]

    def give_up(self, subscription_id: str) -> list[dict[str, Any]]:
        """Retries exhausted: Stripe marks the subscription unpaid."""
        subscription = self.subscriptions[subscription_id]
        subscription["status"] = "unpaid"
        return [self.event("customer.subscription.updated", self.public(subscription))]

    def pay_now(self, subscription_id: str) -> list[dict[str, Any]]:
        """The customer settled the open invoice."""
        subscription = self.subscriptions[subscription_id]
        subscription["status"] = "active"
        return [
            self.event("invoice.paid", self._invoice(subscription)),
            self.event("customer.subscription.updated", self.public(subscription)),
        ]

    def drain(self, subscription_id: str) -> list[dict[str, Any]]:
        """Events the API calls on this subscription caused (plan changes, cancellation)."""
        events = self.subscriptions[subscription_id]["pending_events"]
        self.subscriptions[subscription_id]["pending_events"] = []
        return events

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": kind,
            "created": self.tick(),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "api_version": "2025-01-01",
        }

    @staticmethod
    def public(subscription: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in subscription.items() if k != "pending_events"}

    def _invoice(self, subscription: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"in_{uuid.uuid4().hex[:14]}",
            "object": "invoice",
            "customer": subscription["customer"],
            "subscription": subscription["id"],
        }


class StandInServer:
    """Serves a StripeStandIn on 127.0.0.1 on a free port, in a thread."""

    def __init__(self, stand_in: StripeStandIn) -> None:
        self.stand_in = stand_in
        handler = _handler_for(stand_in)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> StandInServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_for(stand_in: StripeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            path, _, query = self.path.partition("?")
            params = parse_form(body or query)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                status, answer = 200, stand_in.handle(method, path, params, headers)
            except StripeError as exc:
                status, answer = exc.status, exc.body
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("request-id", f"req_{uuid.uuid4().hex[:12]}")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
