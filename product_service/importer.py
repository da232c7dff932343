"""Bulk import of products from CSV or JSON lines: validate every row, upsert by SKU in batches.

The request body is streamed to a temporary file (never held whole in memory), then read
back row by row in a worker thread, validated with the same model as POST /products, and
upserted in batches of ``BATCH_SIZE``, one transaction each. A SKU already in the catalog is
updated (name, description, category, price, currency, active, image); its stock is left as
it is; ``quantity`` is the initial stock of new products. A SKU repeated in the file is
rejected after its first row.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from product_service.domain import ensure_categories
from product_service.schemas import ImportError_, ImportResult, ProductCreate

BATCH_SIZE = 1000
MAX_REPORTED_ERRORS = 1000
FORMATS = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}
# CSV headers may be camelCase (as the API) or snake_case.
_ALIASES = {"image_url": "imageUrl", "imageurl": "imageUrl"}

Row = tuple[int, dict[str, Any]]


async def spool(chunks: AsyncIterator[bytes], limit_bytes: int) -> IO[bytes]:
    """Write the streamed body to a temporary file; refuse past ``limit_bytes``."""
    file = tempfile.TemporaryFile()
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit_bytes:
            file.close()
            raise ValueError(f"the file is larger than {limit_bytes} bytes")
        await asyncio.to_thread(file.write, chunk)
    file.seek(0)
    return file


def _csv_rows(text: IO[str]) -> Iterator[Row]:
    reader = csv.DictReader(text)
    line = 1  # the header
    for record in reader:
        start, line = line + 1, reader.line_num
        row = {_ALIASES.get(k.strip().lower(), k.strip()): v for k, v in record.items() if k}
        # CSV has only text: a count written in digits is the integer (JSON must say 10).
        if isinstance(row.get("quantity"), str) and re.fullmatch(r"[0-9]{1,9}", row["quantity"]):
            row["quantity"] = int(row["quantity"])
        yield start, row


def _jsonl_rows(text: IO[str]) -> Iterator[Row]:
    for number, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield number, {"__error__": f"not valid JSON: {exc.msg}"}
            continue
        yield number, value if isinstance(value, dict) else {"__error__": "not a JSON object"}


class Batches:
    """Reads validated batches from the spooled file; each call runs in a worker thread."""

    def __init__(self, file: IO[bytes], fmt: str) -> None:
        text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="strict", newline="")
        self.rows = _csv_rows(text) if fmt == "csv" else _jsonl_rows(text)
        self.seen: dict[str, int] = {}
        self.received = 0

    def next_batch(self) -> tuple[list[dict[str, Any]], list[ImportError_]]:
        good: list[dict[str, Any]] = []
        bad: list[ImportError_] = []
        for line, row in self.rows:
            self.received += 1
            sku = row.get("sku") if isinstance(row.get("sku"), str) else None
            if "__error__" in row:
                bad.append(ImportError_(line=line, sku=None, reason=row["__error__"]))
                continue
            row = {k: v for k, v in row.items() if v != "" or k in ("description",)}
            try:
                product = ProductCreate.model_validate(row)
            except ValidationError as exc:
                reason = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}"
                    for e in exc.errors()
                )
                bad.append(ImportError_(line=line, sku=sku, reason=reason))
                continue
            if product.sku in self.seen:
                reason = f"duplicate sku: first seen at line {self.seen[product.sku]}"
                bad.append(ImportError_(line=line, sku=product.sku, reason=reason))
                continue
            self.seen[product.sku] = line
            good.append(
                {
                    "id": uuid.uuid4(),
                    "sku": product.sku,
                    "name": product.name,
                    "description": product.description,
                    "category": product.category,
                    "price": product.price,
                    "currency": product.currency,
                    "active": product.active,
                    "image_url": str(product.image_url) if product.image_url else None,
                    "available_quantity": product.quantity,
                }
            )
            if len(good) >= BATCH_SIZE:
                break
        return good, bad


_COLUMNS = (
    "id",
    "sku",
    "name",
    "description",
    "category",
    "price",
    "currency",
    "active",
    "image_url",
    "available_quantity",
)
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS import_rows (
    id uuid, sku text, name text, description text, category text, price numeric(12, 2),
    currency text, active boolean, image_url text, available_quantity integer
) ON COMMIT DELETE ROWS
"""
_MERGE = sa.text(
    f"""
    INSERT INTO products ({", ".join(_COLUMNS)})
    SELECT {", ".join(_COLUMNS)} FROM import_rows
    ON CONFLICT (sku) DO UPDATE SET
        name = excluded.name, description = excluded.description,
        category = excluded.category, price = excluded.price, currency = excluded.currency,
        active = excluded.active, image_url = excluded.image_url, updated_at = now()
    RETURNING (xmax = 0)
    """
)


async def upsert(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Insert or update by SKU; return how many were new.

    The rows are COPied into a temporary staging table and merged with one
    INSERT ... SELECT ... ON CONFLICT: an order of magnitude faster than building a
    many-row VALUES statement per batch (whose compilation dominated the import).
    """
    await ensure_categories(session, {r["category"] for r in rows})
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.execute(_STAGING)
    await raw.copy_records_to_table(
        "import_rows", records=[tuple(r[c] for c in _COLUMNS) for r in rows], columns=_COLUMNS
    )
    inserted = (await session.execute(_MERGE)).scalars().all()
    return sum(1 for new in inserted if new)


async def import_file(
    sessionmaker: async_sessionmaker[AsyncSession], file: IO[bytes], fmt: str
) -> ImportResult:
    batches = Batches(file, fmt)
    created = updated = rejected = 0
    errors: list[ImportError_] = []
    while True:
        try:
            good, bad = await asyncio.to_thread(batches.next_batch)
        except UnicodeDecodeError as exc:
            bad = [ImportError_(line=batches.received + 1, sku=None, reason=f"not UTF-8: {exc}")]
            good = []
            rejected += 1
            errors.extend(bad)
            break
        except csv.Error as exc:
            bad = [ImportError_(line=batches.received + 1, sku=None, reason=f"bad CSV: {exc}")]
            rejected += 1
            errors.extend(bad)
            break
        rejected += len(bad)
        errors.extend(bad[: max(0, MAX_REPORTED_ERRORS - len(errors))])
        if good:
            async with sessionmaker() as session, session.begin():
                new = await upsert(session, good)
            created += new
            updated += len(good) - new
        if not good and not bad:
            break
    return ImportResult(
        received=batches.received,
        created=created,
        updated=updated,
        rejected=rejected,
        errors=errors,
        errors_truncated=rejected > len(errors),
    )
