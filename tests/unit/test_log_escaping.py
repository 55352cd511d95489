"""What a client sent goes into a log escaped (server/errors.py): it cannot end a line,
start another one, or send escape sequences to a terminal, and it can be read back."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from server.errors import LOGGED_CHARS, loggable, loggable_traceback

BIDI_CONTROLS = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def safe(line: str) -> bool:
    return not any(
        unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in BIDI_CONTROLS for char in line
    )


def read_back(escaped: str) -> str:
    return escaped.encode("latin-1", "backslashreplace").decode("unicode_escape")


@given(text=st.text(max_size=LOGGED_CHARS))
@example(text="/api/x\r\nERROR - fieldcrm - forged\x1b[31m\x00")
@example(text="\\r\\n is not a line break, \\x1b not an escape")
@example(text="\u2028\u2029\x85\u202e\u00e9\u65e5")
def test_escaped_text_is_one_safe_line_that_reads_back(text: str) -> None:
    escaped = loggable(text)
    assert safe(escaped)
    assert read_back(escaped) == text


def test_long_text_is_cut() -> None:
    escaped = loggable("\n" * (LOGGED_CHARS + 10))
    assert escaped == "\\n" * LOGGED_CHARS + "... (10 more characters)"


def test_a_traceback_keeps_each_message_on_one_indented_line() -> None:
    try:
        try:
            raise KeyError("k")
        except KeyError as exc:
            raise RuntimeError("bad\r\nERROR - fieldcrm - forged\x1b[31m") from exc
    except RuntimeError as exc:
        text = loggable_traceback(exc)
    lines = text.split("\n")
    assert all(line.startswith("    ") and safe(line) for line in lines)
    assert "    KeyError: 'k'" in lines
    assert "    The above exception was the direct cause of the following exception:" in lines
    assert lines[-1] == "    RuntimeError: bad\\r\\nERROR - fieldcrm - forged\\x1b[31m"
    assert sum(line.strip() == "Traceback (most recent call last):" for line in lines) == 2
