"""Bulk import of products from CSV or JSON lines: every row on its own, nothing lost.

The request body is streamed to a temporary file (never held whole in memory), then read
back line by line in a worker thread. Each line is decoded on its own, so an invalid byte
costs only the row it is in; each CSV record is cut from the file before it is parsed, so a
broken quote costs only its own line: the rows after it are read as usual. A row is rejected
with its true line number and the reason; every other row is validated with the same model
as POST /products and upserted by SKU in batches of ``BATCH_SIZE``, one transaction each.

``received = created + updated + rejected``, always. A SKU already in the catalog is updated
(name, description, category, price, currency, active, image); its stock is left as it is;
``quantity`` is the initial stock of new products. A SKU repeated in the file is rejected
after its first row. A file that cannot be read at all (empty, not text, no header with the
required columns, not JSON lines) raises ``Unreadable`` before anything is imported.

CSV is RFC 4180: a field holding a comma, a quote or a line break is quoted, and its quotes
are doubled. A record may span lines (a quoted line break) up to ``MAX_RECORD_BYTES``.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import re
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import IO, Any

import sqlalchemy as sa
import sqlalchemy.exc
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from product_service.schemas import ImportError_, ImportResult, ProductCreate
from product_service.service import ensure_categories

log = structlog.get_logger(__name__)

BATCH_SIZE = 1000
MAX_REPORTED_ERRORS = 1000
# A record longer than this (a 10,000-character description is about a third of it) is
# taken for an unterminated quote.
MAX_RECORD_BYTES = 32 * 1024
FORMATS = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}
REQUIRED_COLUMNS = ("sku", "name", "category", "price", "currency")
# CSV headers may be camelCase (as the API) or snake_case.
_ALIASES = {"image_url": "imageUrl", "imageurl": "imageUrl"}
_BOM = b"\xef\xbb\xbf"
_COUNT = re.compile(r"[0-9]{1,9}")

Row = tuple[int, dict[str, Any] | str]  # (line, the row's fields or why it is rejected)


class Unreadable(Exception):
    """The file as a whole cannot be read; nothing was imported."""


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


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
        ) from None


class _Lines:
    """The file's physical lines, numbered from 1, with lines given back to read again."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = iter(file)
        self._number = 0
        self._again: deque[tuple[int, bytes]] = deque()

    def next(self) -> tuple[int, bytes] | None:
        if self._again:
            return self._again.popleft()
        raw = next(self._file, None)
        if raw is None:
            return None
        self._number += 1
        if self._number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        return self._number, raw

    def give_back(self, lines: list[tuple[int, bytes]]) -> None:
        self._again.extendleft(reversed(lines))

    def first_text(self) -> tuple[int, str]:
        """The first line with something on it, decoded; ``Unreadable`` if there is none."""
        while (line := self.next()) is not None:
            number, raw = line
            if raw.strip():
                try:
                    return number, _decoded(raw)
                except ValueError as exc:
                    raise Unreadable(f"line {number} is {exc}: not a text file") from None
        raise Unreadable("the file is empty")


_GLUED = "a quote inside an unquoted field, or text after a closing quote"


def _parsed(text: str) -> list[str]:
    """The fields of one CSV record; ValueError saying why it is not one."""
    try:
        records = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        # "new-line character seen in unquoted field": two records glued by a stray quote.
        raise ValueError(_GLUED if "new-line" in str(exc) else f"bad CSV: {exc}") from None
    if len(records) != 1:
        raise ValueError(_GLUED)
    return records[0]


def _records(lines: _Lines) -> Iterator[tuple[int, list[str] | str]]:
    """(first line, the record's fields or why it is rejected) for each CSV record left.

    A record goes on over the next lines while it has an odd number of quotes (a quoted line
    break). If it cannot be read (unterminated by ``MAX_RECORD_BYTES`` or the end of the
    file, or malformed), only its first line is rejected: the lines after it are read again,
    as records of their own."""
    while (line := lines.next()) is not None:
        start, raw = line
        if not raw.strip():
            continue
        taken = [line]
        quotes = raw.count(b'"')
        size = len(raw)
        while quotes % 2 and size <= MAX_RECORD_BYTES:
            more = lines.next()
            if more is None:
                break
            taken.append(more)
            quotes += more[1].count(b'"')
            size += len(more[1])
        try:
            if quotes % 2:
                raise ValueError(
                    "unterminated quoted field (a quote within a field is written twice)"
                )
            fields = _parsed("".join(_decoded(raw) for _, raw in taken))
        except ValueError as exc:
            lines.give_back(taken[1:])
            yield start, str(exc)
            continue
        yield start, fields


def _csv_rows(lines: _Lines) -> Iterator[Row]:
    header_line, header_text = lines.first_text()
    try:
        header = _parsed(header_text)
    except ValueError:
        raise Unreadable(f"line {header_line}: the header is not a CSV line") from None
    columns = [_ALIASES.get(name.strip().lower(), name.strip()) for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise Unreadable(
            f"line {header_line}: the header lacks {', '.join(missing)} "
            f"(the columns needed: {', '.join(REQUIRED_COLUMNS)})"
        )
    for line, fields in _records(lines):
        if isinstance(fields, str):
            yield line, fields
        elif len(fields) != len(columns):
            yield line, f"{len(fields)} fields where the header has {len(columns)}"
        else:
            row: dict[str, Any] = dict(zip(columns, fields, strict=True))
            # CSV has only text: a count written in digits is the integer (JSON must say 10).
            if isinstance(row.get("quantity"), str) and _COUNT.fullmatch(row["quantity"]):
                row["quantity"] = int(row["quantity"])
            yield line, row


def _jsonl_rows(lines: _Lines) -> Iterator[Row]:
    number, text = lines.first_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise Unreadable(f"line {number} is not JSON: not a JSON lines file") from None
    yield number, value if isinstance(value, dict) else "not a JSON object"
    while (line := lines.next()) is not None:
        number, raw = line
        if not raw.strip():
            continue
        try:
            value = json.loads(_decoded(raw))
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON: {exc.msg}"
            continue
        except ValueError as exc:  # not UTF-8
            yield number, str(exc)
            continue
        yield number, value if isinstance(value, dict) else "not a JSON object"


class Batches:
    """Reads validated batches from the spooled file; each call runs in a worker thread."""

    def __init__(self, file: IO[bytes], fmt: str) -> None:
        lines = _Lines(file)
        self.rows: Iterator[Row] = _csv_rows(lines) if fmt == "csv" else _jsonl_rows(lines)
        self.seen: dict[str, int] = {}
        self.received = 0

    def check(self) -> None:
        """Read as far as the first row: raises ``Unreadable`` for a file that is not one."""
        first = next(self.rows, None)
        if first is not None:
            self.rows = itertools.chain([first], self.rows)

    def next_batch(self) -> tuple[list[dict[str, Any]], list[ImportError_]]:
        good: list[dict[str, Any]] = []
        bad: list[ImportError_] = []
        for line, row in self.rows:
            self.received += 1
            if isinstance(row, str):
                bad.append(ImportError_(line=line, sku=None, reason=row))
                continue
            sku = row.get("sku") if isinstance(row.get("sku"), str) else None
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
                    "line": line,
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


class Import:
    """One import: ``check()`` the file, then iterate its progress, one ``ImportResult`` per
    batch (``done`` false, the batch's errors), the last with ``done`` and every error."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], file: IO[bytes], fmt: str):
        self.sessionmaker = sessionmaker
        self.batches = Batches(file, fmt)
        self.created = self.updated = self.rejected = 0
        self.errors: list[ImportError_] = []

    async def check(self) -> None:
        await asyncio.to_thread(self.batches.check)

    def _result(self, errors: list[ImportError_], done: bool) -> ImportResult:
        return ImportResult(
            received=self.batches.received,
            created=self.created,
            updated=self.updated,
            rejected=self.rejected,
            errors=errors,
            errors_truncated=done and self.rejected > len(errors),
            done=done,
        )

    async def progress(self) -> AsyncIterator[ImportResult]:
        while True:
            good, bad = await asyncio.to_thread(self.batches.next_batch)
            if not good and not bad:
                break
            bad += await self._store(good)
            self.rejected += len(bad)
            self.errors.extend(bad[: max(0, MAX_REPORTED_ERRORS - len(self.errors))])
            yield self._result(bad, done=False)
        yield self._result(self.errors, done=True)

    async def _store(self, rows: list[dict[str, Any]]) -> list[ImportError_]:
        """Upsert a batch; if the database refuses it, row by row: only the rows it refuses
        are lost, each reported."""
        if not rows:
            return []
        try:
            await self._upsert(rows)
            return []
        except (sqlalchemy.exc.DataError, sqlalchemy.exc.IntegrityError) as exc:
            log.warning("import_batch_refused_by_database", error=type(exc).__name__)
        refused = []
        for row in rows:
            try:
                await self._upsert([row])
            except (sqlalchemy.exc.DataError, sqlalchemy.exc.IntegrityError) as exc:
                reason = f"refused by the database ({type(exc.orig).__name__})"
                refused.append(ImportError_(line=row["line"], sku=row["sku"], reason=reason))
        return refused

    async def _upsert(self, rows: list[dict[str, Any]]) -> None:
        async with self.sessionmaker() as session, session.begin():
            new = await upsert(session, rows)
        self.created += new
        self.updated += len(rows) - new


async def import_file(
    sessionmaker: async_sessionmaker[AsyncSession], file: IO[bytes], fmt: str
) -> ImportResult:
    """Import the whole file; its final result."""
    job = Import(sessionmaker, file, fmt)
    await job.check()
    return [result async for result in job.progress()][-1]
