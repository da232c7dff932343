"""notification_service: e-mail and SMS to customers, and the delivery log."""
