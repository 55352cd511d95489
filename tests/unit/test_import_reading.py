"""Reading an upload in a child process (server/transfer/reading.py) gives what reading it
in this process gives: the same header, rows, row numbers and encoding, or the same
refusal."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest

from server.errors import ApiError
from server.transfer import reading


def csv_bytes(rows: list[list[Any]], sep: str = ",", encoding: str = "utf-8") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


FRENCH = [["Raison sociale", "Ville", "Téléphone", "Latitude"]] + [
    [f"Électricité Laurent {n}", "Lyon", f"04 78 00 {n // 100 % 100:02d} {n % 100:02d}", "45,76"]
    for n in range(6_000)  # chunks of rows from the child; over IN_THREAD_MAX
]
READABLE = [
    csv_bytes(FRENCH, ";", "cp1252"),
    b"\xef\xbb\xbf" + csv_bytes([["Company", "Zip"], ["Café Zoé", "69003"], [], ["Lu", ""]]),
    csv_bytes([["name", "city"], ["a\tb", 'quoted "x"'], ["multi\nline", "Lyon"]], "\t"),
    xlsx_bytes([["Organisation", "Postcode", "lat"], ["Garage", 69004, 45.77], [None, None, None],
                ["Fleurs", "69005", None]]),
]  # fmt: skip
REFUSED = [
    b"\r\n\r\n",
    b"PK\x03\x04 this is no workbook",
    "name,city\nÉlectricité,Lyon\n".encode() + "Café,Lyon\n".encode("cp1252"),
    b'name,city\n"' + b"x" * 20_000 + b",Lyon\n",
    ("name\n" + "".join(f"Shop {n}\n" for n in range(50_001))).encode(),
]


@pytest.mark.parametrize("body", READABLE)
async def test_a_child_process_reads_what_this_process_reads(body: bytes) -> None:
    here = reading.read_sheet(body)
    there = await reading._read_in_child(body)
    assert there == here
    assert len(there.rows) == len(there.numbers) > 0


@pytest.mark.parametrize("body", REFUSED)
async def test_a_child_process_refuses_what_this_process_refuses(body: bytes) -> None:
    with pytest.raises(reading.ApiError) as here:
        reading.read_sheet(body)
    with pytest.raises(reading.ApiError) as there:
        await reading._read_in_child(body)
    assert (there.value.status, there.value.error, there.value.detail) == (
        here.value.status,
        here.value.error,
        here.value.detail,
    )


async def test_uploads_over_the_threads_size_are_read_in_a_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    children: list[bytes] = []
    in_child = reading._read_in_child

    async def counted(body: bytes) -> reading.Sheet:
        children.append(body)
        return await in_child(body)

    monkeypatch.setattr(reading, "_read_in_child", counted)
    small, large = READABLE[1], READABLE[0]
    assert len(small) <= reading.IN_THREAD_MAX < len(large)
    assert (await reading.read_upload(small)).encoding == "utf-8"
    assert (await reading.read_upload(large)).rows == reading.read_sheet(large).rows
    assert children == [large]
    with pytest.raises(ApiError) as refused:  # the server's, for its error handler
        await reading.read_upload(REFUSED[-1])
    assert (refused.value.status, refused.value.error) == (413, "too_many_rows")
