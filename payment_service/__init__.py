"""payment_service: payments through Stripe or the sandbox."""
