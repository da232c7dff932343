"""Event consumers of user_service: none yet; it only publishes UserRegistered."""
