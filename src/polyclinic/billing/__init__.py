"""Billing (shared schemas): global plans and their versions, each clinic's subscription, the
appointment quota engine and its ledger, Stripe Billing, plan features and limits, and the
clinic's standing (suspended when it lapses, reactivated once paid)."""
