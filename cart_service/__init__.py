"""cart_service: one cart per user in Redis, priced from product_service."""
