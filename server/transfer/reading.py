"""Reading an uploaded table (SPEC section 8): a CSV file as spreadsheets really write them,
or the first sheet of an .xlsx workbook, into a header and rows of text.

CSV: UTF-8 with or without a byte order mark; otherwise the legacy encoding
charset-normalizer detects (Windows-1252 from an older Excel, Mac Roman, ...). A file that
holds valid UTF-8 sequences and bytes that are not UTF-8 mixes two encodings: refused
rather than guessed (some names would come out garbled). The separator is `,` `;` or a
tab, whichever the header line has most of outside quotes; quoting per RFC 4180.
xlsx: openpyxl in read-only mode (rows streamed from the zip, not a workbook in memory).
The server reads uploads with read_upload(), which never holds the event loop for long.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from time import perf_counter

from server.errors import ApiError

MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024
MAX_CELL = 10_000  # characters: no field of ours holds more than this but bodies (20,000)
SLICE_MS = 10.0  # reading a workbook gives the event loop a turn this often

XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
ZIP_MAGIC = b"PK\x03\x04"
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


@dataclass
class Sheet:
    header: list[str]
    rows: list[list[str]]  # each as long as the header or shorter
    encoding: str  # "utf-8", "cp1252", ..., or "xlsx"
    numbers: list[int]  # each row's number in the file as a spreadsheet shows it


def read_sheet(body: bytes) -> Sheet:
    """The header and rows of an uploaded CSV or xlsx file, or ApiError (415, 413, 422)."""
    _check(body)
    if body.startswith(ZIP_MAGIC):
        reading = _XlsxRows(body)
        for _ in reading:
            pass
        return reading.sheet()
    text, encoding = _decode(body)
    return _read_csv(text, encoding)


async def read_upload(body: bytes) -> Sheet:
    """read_sheet() without holding the event loop: a CSV file in a worker thread (half a
    second for 50,000 rows, mostly in C); an xlsx workbook on the loop, a slice of
    SLICE_MS at a time (openpyxl parses in Python: seconds for 50,000 rows, which in a
    thread would hold the interpreter's lock against the loop all along)."""
    _check(body)
    if not body.startswith(ZIP_MAGIC):
        return await asyncio.to_thread(read_sheet, body)
    reading = _XlsxRows(body)
    turn = perf_counter()
    for _ in reading:
        if (perf_counter() - turn) * 1000 > SLICE_MS:
            await asyncio.sleep(0)
            turn = perf_counter()
    return reading.sheet()


def _check(body: bytes) -> None:
    if len(body) > MAX_BYTES:
        raise ApiError(413, "too_large", "The file is over 20 MiB; split it into smaller files.")
    if not body.strip():
        raise ApiError(422, "empty", "The file is empty: nothing to import.")


def _decode(body: bytes) -> tuple[str, str]:
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        bad_at = exc.start
    if b"\x00" in body[:4096]:
        raise ApiError(
            415,
            "unsupported_media_type",
            "This is not a CSV or .xlsx file (it holds binary data); save it as CSV or .xlsx.",
        )
    if _UTF8_MULTIBYTE.search(body):
        line = body[:bad_at].count(b"\n") + 1
        raise ApiError(
            422,
            "mixed_encoding",
            f"The file mixes UTF-8 with another encoding (line {line} is not UTF-8 while"
            " other lines are); save the whole file again as CSV UTF-8.",
        )
    from charset_normalizer import from_bytes

    best = from_bytes(body[:1_000_000]).best()
    if best is None or best.encoding in ("utf_8", "ascii"):
        raise ApiError(
            422,
            "encoding",
            "The file's text encoding could not be recognised; save it as CSV UTF-8.",
        )
    return body.decode(best.encoding, errors="replace"), best.encoding


def _separator(first_line: str) -> str:
    outside = "".join(first_line.split('"')[0::2])
    counts = {sep: outside.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=lambda sep: counts[sep]) if any(counts.values()) else ","


def _read_csv(text: str, encoding: str) -> Sheet:
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(first_line))
    rows: list[list[str]] = []
    numbers: list[int] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank lines, and the empty rows spreadsheets leave at the end
            if any(len(cell) > MAX_CELL for cell in row):
                raise ApiError(
                    422,
                    "too_long",
                    f"Line {reader.line_num} holds a value over {MAX_CELL:,} characters; is"
                    " a quote left open?",
                )
            rows.append(row)
            numbers.append(reader.line_num)
            if len(rows) > MAX_ROWS + 1:
                raise _too_many()
    except csv.Error as exc:
        raise ApiError(
            422, "malformed", f"Line {reader.line_num} cannot be read as CSV: {exc}."
        ) from None
    if not rows:
        raise ApiError(422, "empty", "The file holds no rows: nothing to import.")
    return Sheet(header=rows[0], rows=rows[1:], encoding=encoding, numbers=numbers[1:])


def _too_many() -> ApiError:
    return ApiError(
        413, "too_many_rows", f"The file has more than {MAX_ROWS:,} rows; split it into parts."
    )


def _xlsx_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


class _XlsxRows:
    """The first sheet of a workbook, read a row per step (iterate it), then `sheet()`."""

    def __init__(self, body: bytes) -> None:
        import openpyxl

        try:
            self.workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"This is not a CSV or .xlsx file ({type(exc).__name__}); save it as CSV or .xlsx.",
            ) from None
        self.rows: list[list[str]] = []
        self.numbers: list[int] = []

    def __iter__(self) -> Iterator[None]:
        try:
            sheet = self.workbook.worksheets[0]
            for number, values in enumerate(sheet.iter_rows(values_only=True), 1):
                yield
                row = [_xlsx_cell(value) for value in values]
                if not any(cell.strip() for cell in row):
                    continue
                if any(len(cell) > MAX_CELL for cell in row):
                    raise ApiError(
                        422, "too_long", f"Row {number} holds a value over {MAX_CELL:,} characters."
                    )
                self.rows.append(row)
                self.numbers.append(number)
                if len(self.rows) > MAX_ROWS + 1:
                    raise _too_many()
        finally:
            self.workbook.close()

    def sheet(self) -> Sheet:
        if not self.rows:
            raise ApiError(422, "empty", "The workbook's first sheet is empty: nothing to import.")
        return Sheet(
            header=self.rows[0], rows=self.rows[1:], encoding="xlsx", numbers=self.numbers[1:]
        )
