"""The platform: the super-admin API (clinics, domains, plans, metrics, platform accounts),
self-service signup, the Stripe webhook and the jobs that apply its events. It composes the
domains: the clinic lifecycle hooks are listed here."""
