"""Carts in Redis: a hash productId -> quantity per user, priced with product_service's data.

The last product data seen is kept in Redis too, so when product_service is down the cart
still answers, marked stale; a product never seen before cannot be added then (503).

Bounded whatever the cart: at most ``MAX_CART_LINES`` distinct products and
``MAX_LINE_QUANTITY`` of each. Reading or pricing a cart costs one HGETALL, one batched product
lookup (or one MGET of the last known data) and one pipelined write of what it saw; a change
is one atomic script, so concurrent adds of a product all count and none passes a limit.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import redis.asyncio as redis

from cart_service.schemas import Cart, CartLine
from shared_core.fields import MAX_CART_LINES, MAX_LINE_QUANTITY
from shared_runtime.errors import ApiError
from shared_runtime.peers import PeerClient, PeerResponse, PeerUnavailable

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

# Change one line atomically, within the limits. KEYS: the cart. ARGV: product id, quantity,
# "add" or "set", max per line, max lines, available stock, TTL. Returns {outcome, current}:
# outcome the new quantity, or a negative refusal; current the quantity before.
_CHANGE_LINE = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = tonumber(ARGV[2])
if ARGV[3] == 'add' then wanted = wanted + current end
if wanted > tonumber(ARGV[4]) then return {-1, current} end
if current == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then return {-2, current} end
if wanted > tonumber(ARGV[6]) then return {-3, current} end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
redis.call('EXPIRE', KEYS[1], ARGV[7])
return {wanted, current}
"""
_QUANTITY_LIMIT, _CART_FULL, _OUT_OF_STOCK = -1, -2, -3


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
        self._change = client.register_script(_CHANGE_LINE)

    async def products(self, product_ids: list[uuid.UUID]) -> dict[uuid.UUID, ProductInfo]:
        """Fresh from product_service in one call; when it is down, the last known (stale).

        A product that does not exist is absent; when product_service is down, one never seen
        before is a 503."""
        if not product_ids:
            return {}
        # One call for any cart within the limit (a cart older than it: one per 100 lines).
        chunks = [
            product_ids[i : i + MAX_CART_LINES] for i in range(0, len(product_ids), MAX_CART_LINES)
        ]
        try:
            responses = await asyncio.gather(*(self._lookup(chunk) for chunk in chunks))
        except PeerUnavailable as exc:
            known = await self.redis.mget([_snapshot_key(pid) for pid in product_ids])
            stale = {
                pid: ProductInfo.from_json(json.loads(raw), stale=True)
                for pid, raw in zip(product_ids, known, strict=True)
                if raw is not None
            }
            if len(stale) < len(product_ids):
                raise ApiError(
                    503,
                    "product_service_unavailable",
                    "Product data is unavailable right now. Try again shortly.",
                ) from exc
            return stale
        items = [item for response in responses for item in response.json()["items"]]
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.set(_snapshot_key(uuid.UUID(item["id"])), json.dumps(item), ex=self.ttl_s)
            await pipe.execute()
        return {uuid.UUID(item["id"]): ProductInfo.from_json(item, stale=False) for item in items}

    async def _lookup(self, product_ids: list[uuid.UUID]) -> PeerResponse:
        query = [("ids", str(pid)) for pid in product_ids]
        response = await self.peers.get(PRODUCT_PEER, "/products/lookup", query)
        if response.status_code != 200:
            raise PeerUnavailable(PRODUCT_PEER, f"status {response.status_code}")
        return response

    async def _quantities(self, user_id: uuid.UUID) -> dict[uuid.UUID, int]:
        raw = await self.redis.hgetall(cart_key(user_id))
        return {
            uuid.UUID(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()
        }

    async def get(
        self, user_id: uuid.UUID, known: dict[uuid.UUID, ProductInfo] | None = None
    ) -> Cart:
        """The cart priced now; ``known`` is product data this request already fetched."""
        known = known or {}
        quantities = await self._quantities(user_id)
        products = known | await self.products([p for p in quantities if p not in known])
        gone = [pid for pid in quantities if pid not in products]
        if gone:  # no longer in the catalog: the lines go
            await self.redis.hdel(cart_key(user_id), *(str(pid) for pid in gone))
        lines = sorted(
            (
                CartLine(
                    product_id=pid,
                    name=info.name,
                    unit_price=info.price,
                    currency=info.currency,
                    quantity=quantity,
                    line_total=info.price * quantity,
                    active=info.active,
                    available_quantity=info.available_quantity,
                    stale=info.stale,
                )
                for pid, quantity in quantities.items()
                if (info := products.get(pid)) is not None
            ),
            key=lambda line: line.name,
        )
        payable = [line for line in lines if line.active]
        return Cart(
            items=lines,
            item_count=sum(line.quantity for line in payable),
            total=sum((line.line_total for line in payable), Decimal("0.00")),
            currency=payable[0].currency if payable else None,
            stale=any(line.stale for line in lines),
        )

    async def _change_line(
        self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int, *, add: bool
    ) -> dict[uuid.UUID, ProductInfo]:
        """Add ``quantity`` to the line (or set it), checked against the product, the cart's
        currency and the limits; returns the product data it was checked against."""
        in_cart = list(await self._quantities(user_id))
        products = await self.products(list(dict.fromkeys([product_id, *in_cart])))
        info = products.get(product_id)
        if info is None:
            raise ApiError(404, "product_not_found", "No product with this id.")
        if not info.active:
            raise ApiError(409, "product_inactive", f"{info.name} is no longer sold.")
        other = next((products[p] for p in in_cart if p != product_id and p in products), None)
        if other is not None and other.currency != info.currency:
            raise ApiError(
                409,
                "currency_mismatch",
                f"The cart is in {other.currency}; {info.name} is priced in {info.currency}.",
                {"cartCurrency": other.currency, "productCurrency": info.currency},
            )
        outcome, current = await self._change(
            keys=[cart_key(user_id)],
            args=[
                str(product_id),
                quantity,
                "add" if add else "set",
                MAX_LINE_QUANTITY,
                MAX_CART_LINES,
                info.available_quantity,
                self.ttl_s,
            ],
        )
        if outcome == _QUANTITY_LIMIT:
            raise ApiError(
                422,
                "quantity_limit",
                f"At most {MAX_LINE_QUANTITY} of one product per cart"
                f" ({current} already in the cart).",
                {"max": MAX_LINE_QUANTITY, "inCart": current},
            )
        if outcome == _CART_FULL:
            raise ApiError(
                422,
                "cart_full",
                f"A cart holds at most {MAX_CART_LINES} different products.",
                {"maxLines": MAX_CART_LINES},
            )
        if outcome == _OUT_OF_STOCK:
            raise ApiError(
                409,
                "out_of_stock",
                f"Only {info.available_quantity} of {info.name} available.",
                {"productId": str(product_id), "available": info.available_quantity},
            )
        return products

    async def add(
        self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
    ) -> dict[uuid.UUID, ProductInfo]:
        """Add to the line; returns the product data it was checked against."""
        return await self._change_line(user_id, product_id, quantity, add=True)

    async def set(
        self, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
    ) -> dict[uuid.UUID, ProductInfo]:
        return await self._change_line(user_id, product_id, quantity, add=False)

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
