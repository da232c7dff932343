"""One order is one trace: from the gateway's request through every event of its saga, in
every service, each span a child of the one whose work led to it; and the logs name it."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid

from tests.e2e.conftest import RUN_DIR, internal_url
from tests.e2e.test_orders import ADDRESS, new_product, settled
from tests.support import eventually

SAGA_SERVICES = {
    "order_service",
    "cart_service",
    "product_service",
    "payment_service",
    "notification_service",
}


async def test_an_order_is_one_trace_across_the_services(gateway, admin_token, customer, traces):
    admin = {"Authorization": f"Bearer {admin_token}"}
    kettle = await new_product(gateway, admin, stock=5)
    added = await gateway.post(
        "/cart/items", json={"productId": kettle["id"], "quantity": 1}, headers=customer
    )
    assert added.status_code == 201

    # The client starts the trace; the gateway passes it on and answers with it.
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    placed = await gateway.post(
        "/orders",
        json={"shippingAddress": ADDRESS, "paymentMethodId": "pm_card_visa"},
        headers=customer
        | {"Idempotency-Key": str(uuid.uuid4()), "traceparent": f"00-{trace_id}-{client_span}-01"},
    )
    assert placed.status_code == 202, placed.text
    assert placed.headers["traceparent"].split("-")[1] == trace_id
    order = await settled(gateway, customer, placed.json()["id"])
    assert order["status"] == "CONFIRMED"

    def of_the_order() -> list[dict]:
        return [s for s in traces.spans() if s["trace_id"] == trace_id]

    def complete(spans: list[dict]) -> bool:
        names = {(s["service"], s["kind"]) for s in spans}
        # the last step: notification_service consumed OrderConfirmed
        confirmed = any(
            s["service"] == "notification_service" and s["name"] == "OrderConfirmed receive"
            for s in spans
        )
        return SAGA_SERVICES <= {service for service, _ in names} and confirmed

    spans = await eventually(
        lambda: asyncio.sleep(0, result=of_the_order()),
        until=complete,
        timeout=20,
        interval=0.5,
        what="the order's spans from every service",
    )
    by_id = {s["span_id"]: s for s in spans}
    # Every span hangs off another of this trace, up to the client's: one tree, no orphan.
    orphans = [s for s in spans if s["parent_id"] not in by_id and s["parent_id"] != client_span]
    assert orphans == []
    [root] = [s for s in spans if s["parent_id"] == client_span]
    assert root["service"] == "order_service" and root["name"].startswith("POST /orders")

    def ancestors(span: dict) -> list[dict]:
        chain = []
        while span["parent_id"] in by_id:
            span = by_id[span["parent_id"]]
            chain.append(span)
        return chain

    # The saga's order: OrderConfirmed reaches notification_service through the consumers of
    # StockReserved or PaymentProcessed in order_service, which descend from OrderCreated.
    [consumed] = [
        s
        for s in spans
        if s["service"] == "notification_service" and s["name"] == "OrderConfirmed receive"
    ]
    path = [(s["service"], s["name"]) for s in ancestors(consumed)]
    # producers are named by exchange and routing key, consumers by event type
    assert ("order_service", "ecommerce.events,order.confirmed send") in path
    assert {
        ("order_service", "StockReserved receive"),
        ("order_service", "PaymentProcessed receive"),
    } & set(path)
    assert ("order_service", "ecommerce.events,order.created send") in path
    assert path[-1] == (root["service"], root["name"])

    # And every service's log lines name the trace, so logs and traces lead to each other.
    for service in SAGA_SERVICES:
        lines = (RUN_DIR / "logs" / f"{service}.log").read_text().splitlines()
        logged = [json.loads(line) for line in lines if trace_id in line and line.startswith("{")]
        assert any(line.get("trace_id") == trace_id for line in logged), service


async def test_latency_samples_name_their_trace(gateway, customer, traces):
    # OpenMetrics (what Prometheus asks for) carries each bucket's last trace id as an exemplar.
    for _ in range(3):
        assert (await gateway.get("/orders", headers=customer)).status_code == 200
    metrics = await gateway.get(
        f"{internal_url('order_service')}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert metrics.headers["content-type"].startswith("application/openmetrics-text")
    exemplars = set(
        re.findall(
            r'^http_request_duration_seconds_bucket\{.*\} \S+ # \{trace_id="([0-9a-f]{32})"\}',
            metrics.text,
            re.M,
        )
    )
    assert exemplars
    sent = await eventually(
        lambda: asyncio.sleep(0, result={s["trace_id"] for s in traces.spans()}),
        until=lambda ids: bool(ids & exemplars),
        timeout=10,
        what="an exemplar's trace among the spans received",
    )
    assert sent & exemplars
    plain = await gateway.get(f"{internal_url('order_service')}/metrics")
    assert plain.headers["content-type"].startswith("text/plain") and "# {" not in plain.text
