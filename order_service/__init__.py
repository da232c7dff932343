"""order_service: orders and the saga that takes each one to CONFIRMED, SHIPPED or CANCELLED."""
