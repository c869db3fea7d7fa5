"""The stand-in's Connect and card payment API, driven through the real stripe SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import stripe

from tests.stripe_stand_in import StandInServer, StripeStandIn, parse_form


@pytest.fixture
def stand_in(stripe_server: StandInServer) -> StripeStandIn:
    stripe_server.stand_in.refuse_next = None
    return stripe_server.stand_in


@pytest.fixture
async def client(stripe_server: StandInServer) -> AsyncIterator[stripe.StripeClient]:
    http_client = stripe.HTTPXClient(allow_sync_methods=False)
    yield stripe.StripeClient(
        stripe_server.stand_in.api_key,
        base_addresses={"api": stripe_server.base},
        http_client=http_client,
    )
    await http_client.close_async()


async def new_account(client: stripe.StripeClient) -> stripe.Account:
    return await client.v1.accounts.create_async(
        params={
            "type": "express",
            "email": "owner@clinic.test",
            "country": "DE",
            "metadata": {"tenant_id": "t-1"},
            "capabilities": {
                "card_payments": {"requested": True},
                "transfers": {"requested": True},
            },
        }
    )


async def ready_account(client: stripe.StripeClient, stand_in: StripeStandIn) -> str:
    account = await new_account(client)
    stand_in.account_ready(account.id)
    return account.id


def intent_params(destination: str, **overrides: Any) -> Any:
    return {
        "amount": 5000,
        "currency": "eur",
        "application_fee_amount": 250,
        "transfer_data": {"destination": destination},
        "automatic_payment_methods": {"enabled": True},
        "description": "Consultation",
        "metadata": {"appointment_id": "apt-1", "tenant_id": "t-1"},
        **overrides,
    }


def test_form_keys_nest() -> None:
    assert parse_form(
        "metadata[tenant_id]=t&transfer_data[destination]=acct_1"
        "&capabilities[card_payments][requested]=true&items[0][price]=p&amount=12"
    ) == {
        "metadata": {"tenant_id": "t"},
        "transfer_data": {"destination": "acct_1"},
        "capabilities": {"card_payments": {"requested": "true"}},
        "items": [{"price": "p"}],
        "amount": "12",
    }


async def test_account_onboarding(client: stripe.StripeClient, stand_in: StripeStandIn) -> None:
    account = await new_account(client)
    assert account.id.startswith("acct_")
    assert account.object == "account"
    assert (account.type, account.email, account.country) == ("express", "owner@clinic.test", "DE")
    assert account.metadata.to_dict() == {"tenant_id": "t-1"}
    assert not (account.charges_enabled or account.payouts_enabled or account.details_submitted)
    assert stand_in.accounts[account.id]["capabilities"] == {
        "card_payments": "inactive",
        "transfers": "inactive",
    }

    link = await client.v1.account_links.create_async(
        params={
            "account": account.id,
            "refresh_url": "https://a.clinics.test/refresh",
            "return_url": "https://a.clinics.test/return",
            "type": "account_onboarding",
        }
    )
    assert link.object == "account_link"
    assert link.url == f"https://connect.stand-in.test/setup/{account.id}"
    assert link.expires_at > link.created

    [event] = stand_in.account_ready(account.id)
    assert event["type"] == "account.updated"
    assert event["account"] == account.id
    assert event["data"]["object"]["charges_enabled"] is True
    fetched = await client.v1.accounts.retrieve_async(account.id)
    assert fetched.charges_enabled and fetched.payouts_enabled and fetched.details_submitted


async def test_unknown_accounts_are_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.accounts.retrieve_async("acct_x")
    assert missing.value.http_status == 404
    assert missing.value.user_message == "No such account: 'acct_x'"

    with pytest.raises(stripe.InvalidRequestError) as link:
        await client.v1.account_links.create_async(
            params={"account": "acct_x", "type": "account_onboarding"}
        )
    assert link.value.http_status == 400
    assert link.value.param == "account"


async def test_payment_intent_waits_for_a_ready_account(
    client: stripe.StripeClient, stand_in: StripeStandIn
) -> None:
    account = await new_account(client)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.payment_intents.create_async(params=intent_params(account.id))
    assert refused.value.http_status == 400
    assert refused.value.code == "insufficient_capabilities_for_transfer"

    stand_in.account_ready(account.id)
    intent = await client.v1.payment_intents.create_async(params=intent_params(account.id))
    assert intent.id.startswith("pi_")
    assert intent.object == "payment_intent"
    assert (intent.amount, intent.currency, intent.application_fee_amount) == (5000, "eur", 250)
    assert intent.transfer_data is not None
    assert intent.transfer_data.destination == account.id
    assert intent.status == "requires_payment_method"
    assert intent.client_secret and intent.client_secret.startswith(f"{intent.id}_secret_")
    assert (intent.amount_received, intent.latest_charge) == (0, None)
    assert intent.metadata.to_dict() == {"appointment_id": "apt-1", "tenant_id": "t-1"}
    assert intent.description == "Consultation"
    fetched = await client.v1.payment_intents.retrieve_async(intent.id)
    assert fetched.id == intent.id
    assert stand_in.payment_intents_for("appointment_id", "apt-1")[-1]["id"] == intent.id


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": "12.5"}, "amount"),
        ({"application_fee_amount": 5001}, "application_fee_amount"),
        ({"transfer_data": {"destination": "acct_unknown"}}, "transfer_data[destination]"),
    ],
)
async def test_payment_intent_refusals(
    client: stripe.StripeClient, stand_in: StripeStandIn, overrides: dict[str, Any], param: str
) -> None:
    account_id = await ready_account(client, stand_in)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        await client.v1.payment_intents.create_async(params=intent_params(account_id, **overrides))
    assert refused.value.http_status == 400
    assert refused.value.param == param


async def test_pay_refund_and_cancel(client: stripe.StripeClient, stand_in: StripeStandIn) -> None:
    account_id = await ready_account(client, stand_in)
    intent = await client.v1.payment_intents.create_async(params=intent_params(account_id))

    events = stand_in.pay(intent.id)
    [succeeded] = [e for e in events if e["type"] == "payment_intent.succeeded"]
    paid = succeeded["data"]["object"]
    assert paid["status"] == "succeeded"
    assert paid["amount_received"] == 5000
    assert paid["latest_charge"].startswith("ch_")
    assert "amount_refunded" not in paid and "pending_events" not in paid

    refund = await client.v1.refunds.create_async(
        params={
            "payment_intent": intent.id,
            "amount": 1000,
            "reverse_transfer": True,
            "refund_application_fee": True,
            "metadata": {"appointment_id": "apt-1"},
        }
    )
    assert refund.object == "refund"
    assert (refund.amount, refund.currency, refund.status) == (1000, "eur", "succeeded")
    assert (refund.payment_intent, refund.charge) == (intent.id, paid["latest_charge"])
    assert refund.metadata.to_dict() == {"appointment_id": "apt-1"}
    assert refund.transfer_reversal is not None
    assert stand_in.payment_intents[intent.id]["amount_refunded"] == 1000

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id, "amount": 4001})
    assert too_much.value.user_message == (
        "Refund amount (€40.01) is greater than unrefunded amount on charge (€40.00)"
    )

    rest = await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert rest.amount == 4000
    assert stand_in.payment_intents[intent.id]["amount_refunded"] == 5000
    charge = await client.v1.charges.retrieve_async(paid["latest_charge"])
    assert (charge.amount_refunded, charge.refunded) == (5000, True)
    assert [e["type"] for e in stand_in.drain(intent.id)] == [
        "charge.refunded",
        "refund.created",
    ] * 2
    with pytest.raises(stripe.InvalidRequestError) as again:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert again.value.code == "charge_already_refunded"

    with pytest.raises(stripe.InvalidRequestError) as cancel:
        await client.v1.payment_intents.cancel_async(intent.id)
    assert cancel.value.http_status == 400
    assert cancel.value.user_message is not None
    assert cancel.value.user_message.startswith(
        "You cannot cancel this PaymentIntent because it has a status of succeeded."
    )


async def test_declined_then_canceled(client: stripe.StripeClient, stand_in: StripeStandIn) -> None:
    account_id = await ready_account(client, stand_in)
    intent = await client.v1.payment_intents.create_async(params=intent_params(account_id))

    [failed] = stand_in.fail_payment(intent.id)
    assert failed["type"] == "payment_intent.payment_failed"
    assert failed["data"]["object"]["status"] == "requires_payment_method"
    assert failed["data"]["object"]["last_payment_error"]["message"] == "Your card was declined."

    with pytest.raises(stripe.InvalidRequestError) as unpaid:
        await client.v1.refunds.create_async(params={"payment_intent": intent.id})
    assert unpaid.value.user_message == (
        f"This PaymentIntent ({intent.id}) does not have a successful charge to refund."
    )

    canceled = await client.v1.payment_intents.cancel_async(
        intent.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "requested_by_customer")
    assert [e["type"] for e in stand_in.drain(intent.id)] == ["payment_intent.canceled"]
    with pytest.raises(stripe.InvalidRequestError) as twice:
        await client.v1.payment_intents.cancel_async(intent.id)
    assert twice.value.code == "payment_intent_unexpected_state"
    with pytest.raises(ValueError, match="canceled"):
        stand_in.pay(intent.id)


async def test_unknown_payment_intents_and_refunds(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.payment_intents.retrieve_async("pi_x")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as refund:
        await client.v1.refunds.create_async(params={"payment_intent": "pi_x"})
    assert refund.value.user_message == "No such payment_intent: 'pi_x'"
