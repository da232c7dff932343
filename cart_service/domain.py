"""Carts in Redis: a hash productId -> quantity per user, priced with product_service's data.

The last product data seen is kept in Redis too, so when product_service is down the cart
still answers, marked stale; a product never seen before cannot be added then (503).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import redis.asyncio as redis

from cart_service.schemas import MAX_LINE_QUANTITY, Cart, CartLine
from shared_runtime.errors import ApiError
from shared_runtime.peers import PeerClient, PeerUnavailable

CART_TTL_S = 7 * 24 * 3600
PRODUCT_PEER = "product_service"

# Remove what an order took from the cart, once per event (atomic: dedupe and change).
_REMOVE_ORDERED = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do
  local left = redis.call('HINCRBY', KEYS[2], ARGV[i], -tonumber(ARGV[i + 1]))
  if left <= 0 then redis.call('HDEL', KEYS[2], ARGV[i]) end
end
return 1
"""


def cart_key(user_id: uuid.UUID) -> str:
    return f"cart:{user_id}"


def _snapshot_key(product_id: uuid.UUID) -> str:
    return f"cart:product:{product_id}"


@dataclass(frozen=True)
class ProductInfo:
    product_id: uuid.UUID
    name: str
    price: Decimal
    currency: str
    active: bool
    available_quantity: int
    stale: bool

    @classmethod
    def from_json(cls, data: dict[str, Any], stale: bool) -> ProductInfo:
        return cls(
            product_id=uuid.UUID(data["id"]),
            name=data["name"],
            price=Decimal(data["price"]),
            currency=data["currency"],
            active=bool(data["active"]),
            available_quantity=int(data["availableQuantity"]),
            stale=stale,
        )


class Carts:
    def __init__(self, client: redis.Redis, peers: PeerClient, ttl_s: int = CART_TTL_S) -> None:
        self.redis = client
        self.peers = peers
        self.ttl_s = ttl_s
        self._remove_ordered = client.register_script(_REMOVE_ORDERED)

    async def product(self, product_id: uuid.UUID) -> ProductInfo | None:
        """Fresh from product_service, else the last known (stale); None if it does not exist."""
        try:
            response = await self.peers.get(PRODUCT_PEER, f"/products/{product_id}")
        except PeerUnavailable as exc:
            cached = await self.redis.get(_snapshot_key(product_id))
            if cached is None:
                raise ApiError(
                    503,
                    "product_service_unavailable",
                    "Product data is unavailable right now. Try again shortly.",
                    {"productId": str(product_id)},
                ) from exc
            return ProductInfo.from_json(json.loads(cached), stale=True)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise ApiError(
                503, "product_service_unavailable", "Product data is unavailable right now."
            )
        data = response.json()
        await self.redis.set(_snapshot_key(product_id), json.dumps(data), ex=self.ttl_s)
        return ProductInfo.from_json(data, stale=False)

    async def _quantities(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        raw = await self.redis.hgetall(cart_key(user_id))
        return {
            uuid.UUID(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()
        }

    async def get(self, user_id: uuid.UUID, seen: ProductInfo | None = None) -> Cart:
        """The cart priced now; ``seen`` is product data this request already fetched."""
        quantities = await self._quantities(user_id)

        async def lookup(product_id: uuid.UUID) -> ProductInfo | None:
            if seen is not None and seen.product_id == product_id:
                return seen
            return await self.product(product_id)

        products = await asyncio.gather(*(lookup(pid) for pid in quantities))
        lines = []
        for (product_id, quantity), info in zip(quantities.items(), products, strict=True):
            if info is None:  # gone from the catalog: drop the line
                await self.redis.hdel(cart_key(user_id), str(product_id))
                continue
            lines.append(
                CartLine(
                    product_id=product_id,
                    name=info.name,
                    unit_price=info.price,
                    currency=info.currency,
                    quantity=quantity,
                    line_total=info.price * quantity,
                    active=info.active,
                    available_quantity=info.available_quantity,
                    stale=info.stale,
                )
            )
        lines.sort(key=lambda line: line.name)
        payable = [line for line in lines if line.active]
        return Cart(
            items=lines,
            item_count=sum(line.quantity for line in payable),
            total=sum((line.line_total for line in payable), Decimal("0.00")),
            currency=payable[0].currency if payable else None,
            stale=any(line.stale for line in lines),
        )

    async def _check(self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int) -> ProductInfo:
        info = await self.product(product_id)
        if info is None:
            raise ApiError(404, "product_not_found", "No product with this id.")
        if not info.active:
            raise ApiError(409, "product_inactive", f"{info.name} is no longer sold.")
        if quantity > MAX_LINE_QUANTITY:
            raise ApiError(
                409,
                "quantity_limit",
                f"At most {MAX_LINE_QUANTITY} of one product per cart.",
                {"max": MAX_LINE_QUANTITY},
            )
        if quantity > info.available_quantity:
            raise ApiError(
                409,
                "out_of_stock",
                f"Only {info.available_quantity} of {info.name} available.",
                {"productId": str(product_id), "available": info.available_quantity},
            )
        others = [pid for pid in await self._quantities(user_id) if pid != product_id]
        # Every line shares one currency, so one other line tells the cart's.
        other = await self.product(others[0]) if others else None
        if other is not None and other.currency != info.currency:
            raise ApiError(
                409,
                "currency_mismatch",
                f"The cart is in {other.currency}; {info.name} is priced in {info.currency}.",
                {"cartCurrency": other.currency, "productCurrency": info.currency},
            )
        return info

    async def _write(self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int) -> None:
        key = cart_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, str(product_id), quantity)
            pipe.expire(key, self.ttl_s)
            await pipe.execute()

    async def add(self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int) -> ProductInfo:
        """Add to the line; returns the product data it was checked against."""
        current = await self.redis.hget(cart_key(user_id), str(product_id))
        total = quantity + (int(current) if current else 0)
        info = await self._check(user_id, product_id, total)
        await self._write(user_id, product_id, total)
        return info

    async def set(self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int) -> ProductInfo:
        info = await self._check(user_id, product_id, quantity)
        await self._write(user_id, product_id, quantity)
        return info

    async def remove(self, user_id: uuid.UUID, product_id: uuid.UUID) -> None:
        if not await self.redis.hdel(cart_key(user_id), str(product_id)):
            raise ApiError(404, "not_in_cart", "This product is not in the cart.")

    async def clear(self, user_id: uuid.UUID) -> None:
        await self.redis.delete(cart_key(user_id))

    async def remove_ordered(
        self, event_id: uuid.UUID, user_id: uuid.UUID, lines: list[tuple[uuid.UUID, int]]
    ) -> bool:
        """Take an order's lines out of the cart, once per event id; False for a duplicate."""
        args: list[Any] = [self.ttl_s]
        for product_id, quantity in lines:
            args += [str(product_id), quantity]
        done = await self._remove_ordered(
            keys=[f"cart:order-events:{event_id}", cart_key(user_id)], args=args
        )
        return bool(done)
