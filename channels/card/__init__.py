"""The hosted-page card gateway: PaymentIntents-style API, signed webhooks."""
