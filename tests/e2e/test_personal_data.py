"""Personal data stays out of URLs, logs and spans: what the gateway's access log, the services'
logs and the traces of a request keep of an e-mail searched for, sent in a query string or in
a body, is nothing."""

from __future__ import annotations

import asyncio
import urllib.parse

from shared_core.fields import REDACTED_QUERY
from tests.e2e.conftest import RUN_DIR
from tests.e2e.test_accounts import new_email
from tests.e2e.test_orders import new_product, order, shopper
from tests.support import eventually


def forms(email: str) -> set[str]:
    """How an e-mail may stand in a log line or a span: as typed, lower case, URL-encoded."""
    return {
        form
        for value in (email, email.lower())
        for form in (value, urllib.parse.quote(value), urllib.parse.quote_plus(value))
    }


def logged(needles: set[str]) -> list[str]:
    found = []
    for log in sorted([*RUN_DIR.glob("logs/*.log"), *RUN_DIR.glob("nginx/*.log")]):
        text = log.read_text(errors="replace").lower()
        found += [f"{log.name}: {n}" for n in needles if n.lower() in text]
    return found


def in_spans(traces, needles: set[str]) -> list[str]:
    found = []
    for span in traces.spans():
        text = " ".join([span["name"], *span["attributes"].values()]).lower()
        found += [f"{span['service']} {span['name']}: {n}" for n in needles if n.lower() in text]
    return found


async def test_an_email_searched_for_or_sent_in_a_url_is_in_no_log_nor_span(
    gateway, admin_token, traces
):
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = await shopper(gateway, phone=None)
    email = (await gateway.get("/users/me", headers=user)).json()["email"]
    kettle = await new_product(gateway, admin, stock=5)
    await order(gateway, user, [(kettle["id"], 1)])

    # The back office's search, in a body...
    found = await gateway.post("/orders/search", json={"search": email.upper()}, headers=admin)
    assert found.json()["total"] == 1
    # ...and what a careless client puts in a URL: refused, or ignored, yet passed by.
    stray = new_email()
    for path, params in [
        ("/orders", {"search": email}),
        ("/products", {"search": stray, "pageSize": 1}),
        ("/products", {"userEmail": stray}),
        ("/orders", {"%65mail": stray}),
        ("/products", {"pageSize": 1, "sort": "name"}),  # nothing personal: kept as it is
    ]:
        answer = await gateway.get(path, params=params, headers=admin)
        assert answer.status_code in (200, 422)

    # The gateway writes its log within a second, spans leave every half second: once the
    # lines and spans of those requests are in, a leak would be too.
    needles = forms(email) | forms(stray)
    access = RUN_DIR / "nginx" / "access.log"
    kept_query = '"uri":"/api/v1/products?pageSize=1&sort=name"'
    await eventually(
        lambda: asyncio.sleep(0, result=access.read_text()),
        until=lambda text: text.count(REDACTED_QUERY) >= 4 and kept_query in text,
        timeout=10,
        what="the requests' lines in the access log",
    )
    await eventually(
        lambda: asyncio.sleep(0, result=masked_spans(traces)),
        until=lambda n: n >= 3,  # the three that reach a service (/orders twice, /products)
        timeout=10,
        what="the requests' server spans, masked",
    )
    assert logged(needles) == []
    assert in_spans(traces, needles) == []
    # What is kept is still useful: the path, and a query in which nothing is personal.
    kept = access.read_text()
    assert '"uri":"/api/v1/products?[redacted]"' in kept
    assert '"uri":"/api/v1/orders/search"' in kept
    assert kept_query in kept


def masked_spans(traces) -> int:
    return sum(
        1
        for span in traces.spans()
        if any(
            REDACTED_QUERY in span["attributes"].get(name, "")
            for name in ("http.url", "http.target", "url.full", "url.query")
        )
    )
