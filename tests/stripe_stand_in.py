"""A local server that speaks the part of Stripe's API Polyclinic calls, for the stripe SDK
to be pointed at (`STRIPE_API_BASE`). It checks the secret key, keeps customers, Checkout
sessions and subscriptions in memory, honours idempotency keys, refuses unknown prices and
customers as Stripe does, and produces the webhook events Stripe would send, for tests to
sign and deliver.

Connect and card payments too: connected accounts and their onboarding links, destination
PaymentIntents with an application fee (refused until the account can take charges), their
cancellation and refunds; `account_ready`, `pay` and `fail_payment` stand for what the
clinic and the patient do on Stripe's pages."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl

from tests.local_server import LocalHttpServer

MONTH = 30 * 86400
ACCOUNT_LINK_TTL = 300
ACCOUNT_TYPES = ("custom", "express", "standard")
ACCOUNT_LINK_TYPES = ("account_onboarding", "account_update")
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
CANCELABLE = (
    "requires_payment_method",
    "requires_capture",
    "requires_confirmation",
    "requires_action",
    "processing",
)
PAYABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)
CURRENCY_SIGNS = {"usd": "$", "cad": "$", "aud": "$", "eur": "€", "gbp": "£"}
# Bookkeeping kept on stored objects that Stripe's answers do not carry, by object type.
PRIVATE_FIELDS = {
    "subscription": frozenset({"pending_events"}),
    "payment_intent": frozenset({"pending_events", "amount_refunded"}),
}


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding (`items[0][price]=p`) back into nested dicts and lists."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        if not parts:
            continue
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
                if not isinstance(node.get(part), dict | list):
                    node[part] = container
                node = node[part]
        last = parts[-1]
        if isinstance(node, list):
            node.append(value)
        else:
            node[last] = value
    return result


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        error: dict[str, str] = {"type": kind, "message": message}
        if code:
            error["code"] = code
        if param:
            error["param"] = param
        self.body = {"error": error}


def money(amount: int, currency: str) -> str:
    """An amount in the currency's smallest unit as Stripe writes it in messages: `$12.50`."""
    if currency in ZERO_DECIMAL_CURRENCIES:
        value = str(amount)
    else:
        value = f"{amount // 100}.{amount % 100:02d}"
    sign = CURRENCY_SIGNS.get(currency)
    return f"{sign}{value}" if sign else f"{value} {currency.upper()}"


@dataclass
class StripeStandIn:
    api_key: str = "sk_test_polyclinic_stand_in"
    known_prices: set[str] = field(default_factory=set)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
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
            if method == "DELETE":
                return self._cancel_subscription(subscription)
            return self._update_subscription(subscription, params)
        return self._route_connect(method, path, params)

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

    def _cancel_subscription(self, subscription: dict[str, Any]) -> dict[str, Any]:
        """Cancelled at once (DELETE): Stripe bills nothing more and says so by webhook."""
        if subscription["status"] == "canceled":
            raise StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        subscription.update(status="canceled", canceled_at=self.tick())
        subscription["pending_events"].append(
            self.event("customer.subscription.deleted", self.public(subscription))
        )
        return self.public(subscription)

    # --- Connect and card payments --------------------------------------------------------

    def _route_connect(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "POST" and path == "/v1/accounts":
            return self._create_account(params)
        if method == "POST" and path == "/v1/account_links":
            return self._account_link(params)
        if method == "POST" and path == "/v1/payment_intents":
            return self._create_payment_intent(params)
        if method == "POST" and path == "/v1/refunds":
            return self._refund(params)
        match = re.fullmatch(r"/v1/(accounts|payment_intents|charges|refunds)/(\w+)", path)
        if match and method == "GET":
            noun = match.group(1).removesuffix("s")
            return self.public(self._find(noun, match.group(2), status=404, param="id"))
        match = re.fullmatch(r"/v1/payment_intents/(\w+)/cancel", path)
        if match and method == "POST":
            intent = self._find("payment_intent", match.group(1), status=404, param="id")
            return self._cancel(intent, params)
        raise StripeError(404, f"Unrecognized request URL ({method}: {path})")

    def _find(
        self, noun: str, object_id: str | None, *, status: int = 400, param: str | None = None
    ) -> dict[str, Any]:
        """The stored account, payment_intent, charge or refund, or Stripe's `No such ...`."""
        store: dict[str, dict[str, Any]] = getattr(self, f"{noun}s")
        if not object_id or object_id not in store:
            raise StripeError(
                status, f"No such {noun}: '{object_id}'", code="resource_missing", param=param
            )
        return store[object_id]

    @staticmethod
    def _required(params: dict[str, Any], name: str) -> Any:
        value = params.get(name)
        if value is None or value == "":
            raise StripeError(
                400, f"Missing required param: {name}.", code="parameter_missing", param=name
            )
        return value

    @classmethod
    def _integer(cls, params: dict[str, Any], name: str, *, minimum: int = 1) -> int:
        """A form field Stripe reads as an integer (amounts arrive as strings)."""
        raw = cls._required(params, name)
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise StripeError(
                400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name
            ) from None
        if value < minimum:
            raise StripeError(
                400,
                f"This value must be greater than or equal to {minimum}.",
                code="parameter_invalid_integer",
                param=name,
            )
        return value

    @classmethod
    def _optional_integer(
        cls, params: dict[str, Any], name: str, *, minimum: int = 1
    ) -> int | None:
        if params.get(name) in (None, ""):
            return None
        return cls._integer(params, name, minimum=minimum)

    @staticmethod
    def _choice(params: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
        value = params.get(name)
        if value is None or value in allowed:
            return value
        *first, last = allowed
        choices = f"{', '.join(first)}{',' if len(first) > 1 else ''} or {last}"
        raise StripeError(400, f"Invalid {name}: must be one of {choices}", param=name)

    def _create_account(self, params: dict[str, Any]) -> dict[str, Any]:
        kind = params.get("type")
        if kind is None and "controller" not in params:
            self._required(params, "type")
        self._choice(params, "type", ACCOUNT_TYPES)
        capabilities = params.get("capabilities") or {}
        account = {
            "id": f"acct_{uuid.uuid4().hex[:16]}",
            "object": "account",
            "type": kind,
            "email": params.get("email"),
            "country": str(params.get("country") or "US").upper(),
            "business_type": params.get("business_type"),
            "capabilities": {
                name: "inactive"
                for name, wanted in capabilities.items()
                if isinstance(wanted, dict) and wanted.get("requested") == "true"
            },
            "metadata": params.get("metadata") or {},
            "charges_enabled": False,
            "payouts_enabled": False,
            "details_submitted": False,
            "created": self.tick(),
        }
        self.accounts[account["id"]] = account
        return account

    def _account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        account = self._find("account", self._required(params, "account"), param="account")
        self._required(params, "type")
        self._choice(params, "type", ACCOUNT_LINK_TYPES)
        now = self.tick()
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + ACCOUNT_LINK_TTL,
            "url": f"https://connect.stand-in.test/setup/{account['id']}",
        }

    def _create_payment_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = self._integer(params, "amount")
        currency = str(self._required(params, "currency")).lower()
        fee = self._optional_integer(params, "application_fee_amount", minimum=0)
        if params.get("customer"):
            self._customer(params["customer"])
        transfer_data = params.get("transfer_data") or {}
        destination = transfer_data.get("destination") if isinstance(transfer_data, dict) else None
        if transfer_data and not destination:
            self._required({}, "transfer_data[destination]")
        if fee is not None and not destination:
            raise StripeError(
                400,
                "Can only apply an application_fee_amount when the PaymentIntent is attempting"
                " a direct payment (using an OAuth key or Stripe-Account header) or destination"
                " payment (using `transfer_data[destination]`).",
                param="application_fee_amount",
            )
        if fee is not None and fee > amount:
            raise StripeError(
                400,
                f"The application fee ({money(fee, currency)}) cannot be greater than"
                f" the amount of the payment ({money(amount, currency)}).",
                param="application_fee_amount",
            )
        if destination:
            if destination not in self.accounts:
                raise StripeError(
                    400,
                    f"No such destination: '{destination}'",
                    code="resource_missing",
                    param="transfer_data[destination]",
                )
            if not self.accounts[destination]["charges_enabled"]:
                raise StripeError(
                    400,
                    "Your destination account needs to have at least one of the following"
                    " capabilities enabled: transfers, crypto_transfers, legacy_payments",
                    code="insufficient_capabilities_for_transfer",
                    param="transfer_data[destination]",
                )
        automatic = params.get("automatic_payment_methods")
        intent_id = f"pi_{uuid.uuid4().hex[:24]}"
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "application_fee_amount": fee,
            "automatic_payment_methods": {
                "allow_redirects": automatic.get("allow_redirects", "always"),
                "enabled": automatic.get("enabled") == "true",
            }
            if isinstance(automatic, dict)
            else None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": params.get("capture_method", "automatic"),
            "client_secret": f"{intent_id}_secret_{uuid.uuid4().hex[:25]}",
            "created": self.tick(),
            "currency": currency,
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "on_behalf_of": params.get("on_behalf_of"),
            "payment_method": None,
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "receipt_email": params.get("receipt_email"),
            "status": "requires_payment_method",
            "transfer_data": {"destination": destination} if destination else None,
            "amount_refunded": 0,
            "pending_events": [],
        }
        self.payment_intents[intent_id] = intent
        return self.public(intent)

    def _cancel(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] not in CANCELABLE:
            raise StripeError(
                400,
                "You cannot cancel this PaymentIntent because it has a status of"
                f" {intent['status']}. Only a PaymentIntent with one of the following statuses"
                f" may be canceled: {', '.join(CANCELABLE)}.",
                code="payment_intent_unexpected_state",
            )
        reason = self._choice(params, "cancellation_reason", CANCELLATION_REASONS)
        intent.update(status="canceled", cancellation_reason=reason, canceled_at=self.tick())
        intent["pending_events"].append(self.event("payment_intent.canceled", self.public(intent)))
        return self.public(intent)

    def _refund(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("payment_intent"):
            intent = self._find("payment_intent", params["payment_intent"], param="payment_intent")
        elif params.get("charge"):
            charge = self._find("charge", params["charge"], param="charge")
            intent = self.payment_intents[charge["payment_intent"]]
        else:
            raise StripeError(
                400,
                "One of the following params should be provided for this request:"
                " payment_intent or charge.",
            )
        if intent["status"] != "succeeded":
            raise StripeError(
                400,
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge = self.charges[intent["latest_charge"]]
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0:
            raise StripeError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = self._optional_integer(params, "amount") or left
        if amount > left:
            raise StripeError(
                400,
                f"Refund amount ({money(amount, charge['currency'])}) is greater than"
                f" unrefunded amount on charge ({money(left, charge['currency'])})",
                param="amount",
            )
        reason = self._choice(params, "reason", REFUND_REASONS)
        reverse = params.get("reverse_transfer") == "true" and charge["transfer"] is not None
        refund = {
            "id": f"re_{uuid.uuid4().hex[:24]}",
            "object": "refund",
            "amount": amount,
            "balance_transaction": f"txn_{uuid.uuid4().hex[:24]}",
            "charge": charge["id"],
            "created": self.tick(),
            "currency": charge["currency"],
            "metadata": params.get("metadata") or {},
            "payment_intent": intent["id"],
            "reason": reason,
            "status": "succeeded",
            "transfer_reversal": f"trr_{uuid.uuid4().hex[:24]}" if reverse else None,
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        intent["amount_refunded"] = charge["amount_refunded"]
        intent["pending_events"] += [
            self.event("charge.refunded", charge),
            self.event("refund.created", refund),
        ]
        return refund

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

    def account_ready(self, account_id: str) -> list[dict[str, Any]]:
        """The clinic finished Connect onboarding: the account can take charges and payouts."""
        account = self.accounts[account_id]
        account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
        account["capabilities"] = {name: "active" for name in account["capabilities"]}
        return [self.event("account.updated", account, account=account_id)]

    def pay(self, payment_intent_id: str) -> list[dict[str, Any]]:
        """The patient paid by card: the charge succeeds and goes to the destination."""
        intent = self.payment_intents[payment_intent_id]
        if intent["status"] not in PAYABLE:
            raise ValueError(f"{payment_intent_id} is {intent['status']}; it cannot be paid")
        destination = (intent["transfer_data"] or {}).get("destination")
        charge = {
            "id": f"ch_{uuid.uuid4().hex[:24]}",
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "application_fee_amount": intent["application_fee_amount"],
            "captured": True,
            "created": self.tick(),
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent["description"],
            "metadata": dict(intent["metadata"]),
            "paid": True,
            "payment_intent": payment_intent_id,
            "refunded": False,
            "status": "succeeded",
            "transfer": f"tr_{uuid.uuid4().hex[:24]}" if destination else None,
            "transfer_data": intent["transfer_data"],
        }
        self.charges[charge["id"]] = charge
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
            payment_method=f"pm_{uuid.uuid4().hex[:24]}",
        )
        return [
            self.event("charge.succeeded", charge),
            self.event("payment_intent.succeeded", self.public(intent)),
        ]

    def fail_payment(self, payment_intent_id: str) -> list[dict[str, Any]]:
        """The patient's card was declined; the PaymentIntent waits for another card."""
        intent = self.payment_intents[payment_intent_id]
        if intent["status"] not in PAYABLE:
            raise ValueError(f"{payment_intent_id} is {intent['status']}; it cannot be paid")
        intent.update(
            status="requires_payment_method",
            last_payment_error={
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
            },
        )
        return [self.event("payment_intent.payment_failed", self.public(intent))]

    def payment_intents_for(self, metadata_key: str, value: str) -> list[dict[str, Any]]:
        """The stored PaymentIntents whose metadata has this value, oldest first (live dicts,
        with the stand-in's `amount_refunded` and `pending_events`)."""
        return [
            intent
            for intent in self.payment_intents.values()
            if intent["metadata"].get(metadata_key) == value
        ]

    def drain(self, object_id: str) -> list[dict[str, Any]]:
        """Events the API calls on this subscription (plan changes, cancellation) or
        PaymentIntent (cancellation, refunds) caused."""
        stored = (
            self.payment_intents[object_id]
            if object_id.startswith("pi_")
            else self.subscriptions[object_id]
        )
        events, stored["pending_events"] = stored["pending_events"], []
        return events

    def event(
        self, kind: str, obj: dict[str, Any], *, account: str | None = None
    ) -> dict[str, Any]:
        """A webhook event; `account` is the connected account a Connect event is about."""
        event = {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": kind,
            "created": self.tick(),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "api_version": "2025-01-01",
        }
        if account:
            event["account"] = account
        return event

    @staticmethod
    def public(stored: dict[str, Any]) -> dict[str, Any]:
        hidden = PRIVATE_FIELDS.get(stored.get("object", ""), frozenset())
        return {k: v for k, v in stored.items() if k not in hidden}

    def _invoice(self, subscription: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"in_{uuid.uuid4().hex[:14]}",
            "object": "invoice",
            "customer": subscription["customer"],
            "subscription": subscription["id"],
        }


class StandInServer(LocalHttpServer):
    """Serves a StripeStandIn on 127.0.0.1 on a free port, in a thread."""

    def __init__(self, stand_in: StripeStandIn) -> None:
        self.stand_in = stand_in
        super().__init__(_handler_for(stand_in))


def _handler_for(stand_in: StripeStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

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
