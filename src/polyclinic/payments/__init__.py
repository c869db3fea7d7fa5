"""Patient card payments through Stripe Connect: the clinic's connected account, a
PaymentIntent per charge with the platform's fee, cancellation of unpaid intents and refunds."""
