"""cart_service keeps no tables: carts live in Redis (see domain.py for the keys)."""
