"""Write the app-shell list and its version into pwa/sw.js.

Run after changing any file of the app shell:

    python3 pwa/tools/stamp_sw.py

The shell is every file under pwa/ that the server serves to the app, which is every file
except sw.js itself, the developer files (*.py, *.md, anything under tools/) and the
screens loaded on demand (js/online/: they need the server anyway, so they are fetched
when opened, not precached). The
version is a hash of the shell's paths and bytes: a changed file changes sw.js, so the
browser installs the new worker and the "update ready" prompt appears.
tests/unit/test_pwa_static.py applies the same rule and fails when sw.js is stale.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

PWA = Path(__file__).resolve().parent.parent
NOT_SERVED_SUFFIXES = {".py", ".md"}
NOT_SERVED_DIRS = {"tools", "__pycache__"}
ON_DEMAND = "js/online/"  # served, not precached
BLOCK = re.compile(r"// BEGIN SHELL.*?\n(.*?)// END SHELL", re.S)


def shell_files() -> list[Path]:
    files = []
    for path in sorted(PWA.rglob("*")):
        rel = path.relative_to(PWA)
        if not path.is_file() or rel.as_posix() == "sw.js":
            continue
        if path.suffix in NOT_SERVED_SUFFIXES or NOT_SERVED_DIRS & set(rel.parts[:-1]):
            continue
        if rel.as_posix().startswith(ON_DEMAND):
            continue
        files.append(path)
    return files


def url_of(path: Path) -> str:
    rel = path.relative_to(PWA).as_posix()
    return "/" if rel == "index.html" else f"/{rel}"


def version(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(url_of(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def main() -> None:
    sw = PWA / "sw.js"
    files = shell_files()
    urls = sorted(url_of(p) for p in files)
    body = f"const VERSION = {json.dumps(version(files))};\nconst SHELL = [\n"
    body += "".join(f"  {json.dumps(u)},\n" for u in urls) + "];\n"
    text = sw.read_text()
    match = BLOCK.search(text)
    if not match:
        raise SystemExit("sw.js has no // BEGIN SHELL ... // END SHELL block")
    sw.write_text(text[: match.start(1)] + body + text[match.end(1) :])
    print(f"sw.js: {len(urls)} shell files, version {version(files)}")


if __name__ == "__main__":
    main()
