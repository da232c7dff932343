"""Event consumers of product_service: none yet (stock reservations come with the order saga)."""
