"""user_service: accounts, login and JWT access tokens."""
