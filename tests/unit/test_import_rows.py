"""Reading an import file: every row is taken or rejected on its own, at its true line, and a
file that is not one is refused as a whole. (The rows' storage: tests/integration.)"""

from __future__ import annotations

import io
import json

import pytest

from product_service.importer import BATCH_SIZE, MAX_RECORD_BYTES, Batches, Unreadable

HEADER = b"sku,name,category,price,currency,quantity\n"


def row(sku: str, name: str | None = None) -> bytes:
    return f"{sku},{name or 'Mug ' + sku},kitchen,2.50,EUR,3\n".encode()


def read(data: bytes, fmt: str = "csv") -> tuple[dict[int, str], dict[int, str], int]:
    """(line -> sku of each row taken, line -> reason of each row rejected, rows received)."""
    batches = Batches(io.BytesIO(data), fmt)
    batches.check()
    taken: dict[int, str] = {}
    rejected: dict[int, str] = {}
    while True:
        good, bad = batches.next_batch()
        if not good and not bad:
            return taken, rejected, batches.received
        taken |= {g["line"]: g["sku"] for g in good}
        rejected |= {e.line: e.reason for e in bad}


def test_an_invalid_byte_costs_only_its_own_row():
    data = HEADER + row("A") + b"B,Caf\xe9 cup,kitchen,2.50,EUR,3\n" + row("C")
    taken, rejected, received = read(data)
    assert taken == {2: "A", 4: "C"}
    assert rejected == {3: "not UTF-8: byte 0xe9 at column 6"}
    assert received == len(taken) + len(rejected)


def test_an_unterminated_quote_costs_only_its_own_line():
    data = HEADER + row("A") + b'B,"Open quote,kitchen,2.50,EUR,3\n' + row("C") + row("D")
    taken, rejected, _ = read(data)
    assert taken == {2: "A", 4: "C", 5: "D"}
    assert list(rejected) == [3] and "unterminated" in rejected[3]


def test_a_quote_that_runs_to_the_end_of_a_big_file_is_cut_at_the_record_limit():
    rows = b"".join(row(f"R{i}") for i in range(MAX_RECORD_BYTES // 20))
    taken, rejected, received = read(HEADER + b'X,"never closed,kitchen,1.00,EUR,1\n' + rows)
    assert list(rejected) == [2] and len(taken) == received - 1


def test_quoted_line_breaks_and_doubled_quotes_are_one_record():
    data = (
        b"sku,name,description,category,price,currency\n"
        + b'A,"Mug, ""big""","two\nlines\nof text",kitchen,2.50,EUR\n'
        + b"B,Plain,,kitchen,1.00,EUR\n"
    )
    batches = Batches(io.BytesIO(data), "csv")
    batches.check()
    good, bad = batches.next_batch()
    assert bad == []
    assert [(g["line"], g["name"], g["description"]) for g in good] == [
        (2, 'Mug, "big"', "two\nlines\nof text"),
        (5, "Plain", ""),
    ]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        (b"B,Mug,kitchen,2.50,EUR,3,extra\n", "7 fields where the header has 6"),
        (b"B,Mug,kitchen\n", "3 fields where the header has 6"),
        (b'B,"Mu"g,kitchen,2.50,EUR,3\n', "bad CSV"),
        # Two records glued by stray quotes: both rejected, each at its line; nothing more.
        (b'B,Mug "x,kitchen,2.50,EUR,3\n' + b'C,y" z,kitchen,1.00,EUR,1\n', "a quote inside"),
        (b"B,,kitchen,2.50,EUR,3\n", "name"),
        (b"B,\xe2\x80\x8b,kitchen,2.50,EUR,3\n", "name: Value error, must not be blank"),
        (b"B,Mug,kitchen,2.50,EUR,true\n", "quantity"),
        (b"B,Mug,kitchen,1000000.01,EUR,3\n", "price"),
        (b"B,Mug,kitchen,2.50,EUR,3.0\n", "quantity"),
        (b"B,Mu\x07g,kitchen,2.50,EUR,3\n", "control characters"),
    ],
)
def test_each_malformed_row_is_rejected_with_its_reason_and_the_rest_is_taken(bad_line, reason):
    data = HEADER + row("A") + bad_line + row("Z")
    taken, rejected, received = read(data)
    assert sorted(taken.values()) == ["A", "Z"]
    assert 3 in rejected and reason in rejected[3], rejected
    assert received == len(taken) + len(rejected)


def test_json_lines_are_read_line_by_line():
    fields = {"sku": "J1", "name": "Jug", "category": "k", "price": "1.00", "currency": "EUR"}
    good = json.dumps(fields)
    data = "\n".join([good, "{broken", "[1, 2]", "", good.replace("J1", "J2")]).encode()
    data = data.replace(b"{broken", b"{\xff}")
    taken, rejected, received = read(data, "jsonl")
    assert taken == {1: "J1", 5: "J2"}
    assert rejected == {2: "not UTF-8: byte 0xff at column 2", 3: "not a JSON object"}
    assert received == 4  # the blank line is no row


def test_a_repeated_sku_is_rejected_after_its_first_row():
    taken, rejected, _ = read(HEADER + row("A") + row("A", "Again"))
    assert taken == {2: "A"} and rejected == {3: "duplicate sku: first seen at line 2"}


@pytest.mark.parametrize(
    ("data", "fmt", "why"),
    [
        (b"", "csv", "empty"),
        (b"\n \n", "csv", "empty"),
        (b"\x89PNG\r\n\x1a\n", "csv", "not a text file"),
        (b"name,price\nMug,1.00\n", "csv", "lacks sku, category, currency"),
        (b'sku,"name\n', "csv", "header is not a CSV line"),
        (b"<products/>\n", "jsonl", "not a JSON lines file"),
        (b"", "jsonl", "empty"),
    ],
)
def test_a_file_that_is_not_one_is_refused_as_a_whole(data, fmt, why):
    with pytest.raises(Unreadable, match=why):
        Batches(io.BytesIO(data), fmt).check()


def test_a_byte_order_mark_and_crlf_line_ends_are_fine():
    data = b"\xef\xbb\xbf" + HEADER.replace(b"\n", b"\r\n") + row("A").replace(b"\n", b"\r\n")
    assert read(data)[:2] == ({2: "A"}, {})


def test_a_file_of_many_batches_is_read_to_its_end():
    rows = [row(f"R{i}") for i in range(2 * BATCH_SIZE + 3)]
    rows[BATCH_SIZE + 1] = b"broken,row\n"
    taken, rejected, received = read(HEADER + b"".join(rows))
    assert (len(taken), list(rejected), received) == (
        2 * BATCH_SIZE + 2,
        [BATCH_SIZE + 3],
        len(rows),
    )
