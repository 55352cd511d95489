"""Statement text as each driver wants it.

fieldcrm writes SQL with `{}` placeholders (Piccolo's QueryString convention, `{{` for a
brace); asyncpg wants `$1, $2, ...` and sqlite3 wants `?`. Every statement goes through
compile_sql(), so its answers are kept, by text: the texts are few (callers build them
from constants and padded lists).
"""

from __future__ import annotations

import string
from functools import lru_cache


@lru_cache(maxsize=1024)
def compile_sql(sql: str, postgres: bool) -> str:
    """`sql` with each `{}` as `$n` (PostgreSQL) or `?` (SQLite), and `{{` as `{`."""
    out: list[str] = []
    n = 0
    for literal, name, _, _ in string.Formatter().parse(sql):
        out.append(literal)
        if name is not None:
            n += 1
            out.append(f"${n}" if postgres else "?")
    return "".join(out)


def is_read(sql: str) -> bool:
    """Whether `sql` starts as a read (SELECT or WITH). Outside a transaction, SQLite runs
    a read on a reader connection and anything else in the writer's turn."""
    return sql.lstrip()[:6].upper().startswith(("SELECT", "WITH"))
