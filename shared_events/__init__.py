"""What services say to each other: event models, the bus, outbox, inbox, retries and parking."""
