"""product_service: the catalog, stock and reservations, with a Redis cache."""
