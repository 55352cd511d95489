"""Reading an uploaded table (SPEC section 8): a CSV file as spreadsheets really write them,
or the first sheet of an .xlsx workbook, into a header and rows of text.

CSV: UTF-8 with or without a byte order mark; otherwise the legacy encoding
charset-normalizer detects (Windows-1252 from an older Excel, Mac Roman, ...). A file that
holds valid UTF-8 sequences and bytes that are not UTF-8 mixes two encodings: refused
rather than guessed (some names would come out garbled). The separator is `,` `;` or a
tab, whichever the header line has most of outside quotes; quoting per RFC 4180.
xlsx: openpyxl in read-only mode (rows streamed from the zip, not a workbook in memory).

The server reads uploads with read_upload(), which never holds the event loop for long: a
small file in a worker thread, a larger one in a child process (this module run as
this module in a child `python`, which imports nothing of the server but this file).
A thread that parses for a second holds the interpreter's lock against the event loop
each time the loop waits on I/O (up to the switch interval, 5 ms, a wait), and some steps
hold it for a single long call (a regular expression over 20 MiB): a phone's sync, which
waits on I/O many times, would wait that much longer. The child sends the rows back in
chunks, each decoded on the loop in a millisecond or two.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import struct
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import msgspec

MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024
MAX_CELL = 10_000  # characters: no field of ours holds more than this but bodies (20,000)
IN_THREAD_MAX = 256 * 1024  # bytes: a file this small is read in a thread (tens of ms)
CHUNK_ROWS = 1_000  # rows a message from the child process
CHILD_TIMEOUT_S = 300.0
ROOT = str(Path(__file__).resolve().parents[2])  # where the `server` package is

XLSX_TYPES = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",)
ZIP_MAGIC = b"PK\x03\x04"
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


log = logging.getLogger("fieldcrm.import")
FRAME = struct.Struct(">I")  # each message to or from a child: its length, then msgpack


class ApiError(Exception):
    """A file refused whole, as server.errors.ApiError takes it (this module imports
    nothing of the server, so that its child process starts fast)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass
class Sheet:
    header: list[str]
    rows: list[list[str]]  # each as long as the header or shorter
    encoding: str  # "utf-8", "cp1252", ..., or "xlsx"
    numbers: list[int]  # each row's number in the file as a spreadsheet shows it


def read_sheet(body: bytes) -> Sheet:
    """The header and rows of an uploaded CSV or xlsx file, or ApiError (415, 413, 422).
    Seconds of work for 50,000 rows: see read_upload()."""
    _check(body)
    if body.startswith(ZIP_MAGIC):
        reading = _XlsxRows(body)
        for _ in reading:
            pass
        return reading.sheet()
    text, encoding = _decode(body)
    return _read_csv(text, encoding)


async def read_upload(body: bytes) -> Sheet:
    """read_sheet() without holding the event loop (see above), or server.errors.ApiError."""
    from server.errors import ApiError as Refused

    try:
        _check(body)
        if len(body) <= IN_THREAD_MAX:
            return await asyncio.to_thread(read_sheet, body)
        return await _read_in_child(body)
    except ApiError as exc:
        raise Refused(exc.status, exc.error, exc.detail) from None


async def _read_in_child(body: bytes) -> Sheet:
    """read_sheet() in a child process: its rows come back CHUNK_ROWS at a time."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; sys.path.insert(0, sys.argv[1]);"
        " from server.transfer.reading import _child; _child()",
        ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_S):
            return await _sheet_from(child, body)
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def _sheet_from(child: asyncio.subprocess.Process, body: bytes) -> Sheet:
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    stderr = asyncio.ensure_future(child.stderr.read())
    child.stdin.write(body)
    await child.stdin.drain()
    child.stdin.close()
    decode = msgspec.msgpack.Decoder()
    rows: list[list[str]] = []
    numbers: list[int] = []
    try:
        while True:
            (size,) = FRAME.unpack(await child.stdout.readexactly(FRAME.size))
            message = decode.decode(await child.stdout.readexactly(size))
            if message[0] == "rows":
                rows += message[1]
                numbers += message[2]
            elif message[0] == "sheet":
                return Sheet(header=message[1], rows=rows, encoding=message[2], numbers=numbers)
            else:
                raise ApiError(message[1], message[2], message[3])
    except asyncio.IncompleteReadError:
        await child.wait()
        log.error("reading a file in a child process failed: %s", (await stderr)[-2000:])
        raise RuntimeError(
            f"the child process reading the file ended ({child.returncode})"
        ) from None
    finally:
        if not stderr.done():
            stderr.cancel()


def _child() -> None:
    """`python -m server.transfer.reading`: the file on stdin, its sheet on stdout."""
    encode = msgspec.msgpack.Encoder()
    out = sys.stdout.buffer

    def send(message: list[Any]) -> None:
        data = encode.encode(message)
        out.write(FRAME.pack(len(data)) + data)

    try:
        sheet = read_sheet(sys.stdin.buffer.read())
    except ApiError as exc:
        send(["error", exc.status, exc.error, exc.detail])
    else:
        for start in range(0, len(sheet.rows), CHUNK_ROWS):
            end = start + CHUNK_ROWS
            send(["rows", sheet.rows[start:end], sheet.numbers[start:end]])
        send(["sheet", sheet.header, sheet.encoding])
    out.flush()


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


if __name__ == "__main__":
    _child()
