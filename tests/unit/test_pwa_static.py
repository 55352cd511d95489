"""Static checks of the PWA in pwa/: the service worker's precache, the manifest and icons,
the CSP-safe HTML, the size budget, module syntax and the documented test ids.

The app-shell rule: the shell is every file under pwa/ except
  - sw.js itself (the browser fetches it on its own, outside any cache),
  - developer files that the app never loads: *.py and *.md files and anything under a
    tools/ or __pycache__/ directory (e.g. icons/make_icons.py, tools/stamp_sw.py).
index.html is precached as "/", the URL the server serves it at; every other file as
"/<its path under pwa/>". `python3 pwa/tools/stamp_sw.py` writes that list and a hash of
the shell into sw.js; these tests fail when sw.js is stale.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PWA = ROOT / "pwa"
SW = PWA / "sw.js"
DOCS = ROOT / "docs" / "pwa.md"

NOT_SERVED_SUFFIXES = {".py", ".md"}
NOT_SERVED_DIRS = {"tools", "__pycache__"}
# What a phone parses before the first screen: index.html, the stylesheet and every module
# app.js imports statically. Screens few phones open load with import() (docs/pwa.md, "Size").
STARTUP_GZIP_BUDGET = 110 * 1024  # 104 KB on 6 Dec, with search, undo and the account picker
# Everything the service worker precaches, so every screen opens offline, the lazy ones too:
# downloaded once, in the background, after the first screen is up.
# 180 KB since 6 Dec (session 11): 158.5 KB were taken, and offline reports, the account's
# small map and a worker for big territories each need a few KB; startup keeps 110 KB.
SHELL_GZIP_BUDGET = 180 * 1024
# Screens that need the server anyway, loaded with import() when opened: served, not
# precached, so not part of the shell (docs/pwa.md); each has a budget of its own.
ON_DEMAND = "js/online/"
ON_DEMAND_GZIP_BUDGET = 16 * 1024
# The message catalogues (docs/i18n.md): precached with the shell, so a language works
# offline from the first start, but imported only by a phone using that language; each
# has a budget of its own instead of weighing on the shell's (French: 18 KB on 6 Dec).
LANGS = "js/lang/"
CATALOGUE_GZIP_BUDGET = 24 * 1024
STALE = "sw.js is stale: run `python3 pwa/tools/stamp_sw.py`"


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


def file_of(url: str) -> Path:
    return PWA / ("index.html" if url in ("/", "/index.html") else url.lstrip("/"))


def sw_text() -> str:
    return SW.read_text()


def precache_list() -> list[str]:
    match = re.search(r"const SHELL = (\[.*?\]);", sw_text(), re.S)
    assert match, "sw.js must declare `const SHELL = [...]`"
    return json.loads(re.sub(r",\s*\]", "]", match.group(1)))


def sw_version() -> str:
    match = re.search(r'const VERSION = "([0-9a-f]+)";', sw_text())
    assert match, 'sw.js must declare `const VERSION = "<hex>"`'
    return match.group(1)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def js_modules() -> list[Path]:
    return sorted(p for p in (PWA / "js").rglob("*.js"))


# -- the service worker ----------------------------------------------------------------


def test_precache_is_exactly_the_app_shell() -> None:
    listed = precache_list()
    assert len(listed) == len(set(listed)), "the precache names a file twice"
    expected = {url_of(p) for p in shell_files()}
    missing, extra = sorted(expected - set(listed)), sorted(set(listed) - expected)
    assert set(listed) == expected, f"{STALE}; missing: {missing}, extra: {extra}"


def test_every_precached_file_exists() -> None:
    for url in precache_list():
        assert file_of(url).is_file(), f"{url} is precached but {file_of(url)} does not exist"


def test_precache_version_matches_the_shell_contents() -> None:
    digest = hashlib.sha256()
    for path in shell_files():
        digest.update(url_of(path).encode() + b"\0" + path.read_bytes() + b"\0")
    assert sw_version() == digest.hexdigest()[:12], STALE


def test_precache_leaves_out_the_api_vendor_files_and_the_worker() -> None:
    for url in precache_list():
        assert not url.startswith(("/api/", "/vendor/")), url
        assert url != "/sw.js"


def test_service_worker_follows_the_house_rules() -> None:
    text = sw_text()
    code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
    assert re.search(r"const CACHE = `fieldcrm-shell-\$\{VERSION\}`", code), "versioned cache name"
    assert re.search(r"event\.waitUntil\((Promise\.all\(\[)?precacheShell\(\)", code)
    assert re.search(r"await cache\.addAll\(", code), "every precache awaited"
    assert "self.clients.claim()" in code
    assert "caches.delete" in code, "old caches deleted in activate"
    # skipWaiting only on the page's request, never unconditionally in install.
    assert code.count("skipWaiting()") == 1
    assert re.search(r'SKIP_WAITING"\) self\.skipWaiting\(\)', code)
    assert 'request.method !== "GET"' in code
    assert "url.origin !== self.location.origin" in code
    assert 'url.pathname.startsWith("/api/")' in code
    for strategy in ("async function shellForNavigation", "async function cacheFirst"):
        assert strategy in code


# -- the manifest and icons ------------------------------------------------------------


def test_manifest_is_valid_and_complete() -> None:
    manifest = json.loads((PWA / "manifest.webmanifest").read_text())
    for member in ("name", "short_name", "theme_color", "background_color", "icons"):
        assert manifest.get(member), f"manifest lacks {member}"
    assert manifest["display"] == "standalone"
    assert manifest["start_url"] == "/"
    assert manifest["scope"] == "/"
    for colour in ("theme_color", "background_color"):
        assert re.fullmatch(r"#[0-9a-fA-F]{6}", manifest[colour])


def test_each_language_has_its_manifest_as_the_english_one() -> None:
    """docs/i18n.md, "The manifest": the page links manifest.LANG.webmanifest in a language
    other than English; the same app (id, start, icons, colours), described in words of its
    own, served by the server."""
    from server.pwa import MANIFESTS

    english = json.loads((PWA / "manifest.webmanifest").read_text())
    code = re.search(r"LANGUAGES = \{(.*?)\}", (PWA / "js" / "i18n.js").read_text())
    assert code
    langs = [lang for lang in re.findall(r"(\w+):", code.group(1)) if lang != "en"]
    assert langs
    for lang in langs:
        name = f"manifest.{lang}.webmanifest"
        assert name in MANIFESTS, f"the server does not serve {name}"
        assert f"/{name}" in precache_list()
        other = json.loads((PWA / name).read_text())
        assert other["lang"] == lang
        assert other["description"] != english["description"], f"{name} is not translated"
        worded = {"lang", "name", "short_name", "description"}
        assert {k: v for k, v in other.items() if k not in worded} == {
            k: v for k, v in english.items() if k not in worded
        }, f"{name} differs from the English manifest beyond its words"
        assert other["name"] and other["short_name"]


def test_manifest_icons_exist_with_their_declared_sizes() -> None:
    icons = json.loads((PWA / "manifest.webmanifest").read_text())["icons"]
    seen = set()
    for icon in icons:
        path = file_of(icon["src"])
        assert path.is_file(), icon["src"]
        assert icon["type"] == "image/png"
        width, height = (int(n) for n in icon["sizes"].split("x"))
        assert png_size(path) == (width, height), icon["src"]
        for purpose in icon.get("purpose", "any").split():
            seen.add((width, purpose))
    for required in ((192, "any"), (512, "any"), (512, "maskable")):
        assert required in seen, f"no {required[0]}px icon with purpose {required[1]}"


# -- index.html and the CSP --------------------------------------------------------------


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.handler_attributes: list[str] = []
        self._in_script_without_src = False
        self._script_text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name, value in attrs:
            if name == "style":
                self.style_attributes.append(tag)
            if name.startswith("on"):
                self.handler_attributes.append(f"{tag}[{name}]")
            if name in ("src", "href") and value:
                self.refs.append(value)
        if tag == "style":
            self.style_elements += 1
        if tag == "script" and "src" not in found:
            self._in_script_without_src = True
            self._script_text = ""

    def handle_data(self, data: str) -> None:
        if self._in_script_without_src:
            self._script_text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_script_without_src:
            self._in_script_without_src = False
            self.inline_scripts += 1


def parsed_index() -> Page:
    page = Page()
    page.feed((PWA / "index.html").read_text())
    return page


def test_index_references_only_files_that_exist() -> None:
    page = parsed_index()
    local = [r for r in page.refs if r.startswith("/") and not r.startswith("//")]
    assert "/js/app.js" in local and "/manifest.webmanifest" in local
    for ref in local:
        assert file_of(ref.split("?")[0].split("#")[0]).is_file(), (
            f"index.html refers to missing {ref}"
        )
    for ref in page.refs:
        assert ref.startswith(("/", "#")), f"index.html refers outside the app: {ref}"


def test_index_has_no_inline_script_or_style() -> None:
    page = parsed_index()
    assert page.inline_scripts == 0, "inline <script> breaks script-src 'self'"
    assert page.style_elements == 0, "<style> breaks style-src 'self'"
    assert page.style_attributes == [], "style= attributes break style-src 'self'"
    assert page.handler_attributes == [], "on*= handlers break script-src 'self'"


def test_scripts_build_the_dom_without_html_strings_or_eval() -> None:
    forbidden = {
        "innerHTML": r"\.innerHTML\b",
        "outerHTML": r"\.outerHTML\b",
        "insertAdjacentHTML": r"insertAdjacentHTML",
        "document.write": r"document\.write",
        "eval": r"\beval\(",
        "new Function": r"new Function\(",
        "style attribute": r"setAttribute\(\s*[\"']style",
        "string timer": r"set(?:Timeout|Interval)\(\s*[\"'`]",
    }
    for path in [*js_modules(), SW]:
        text = path.read_text()
        for what, pattern in forbidden.items():
            assert not re.search(pattern, text), f"{path.relative_to(ROOT)} uses {what}"


def test_module_imports_resolve_to_files() -> None:
    for path in js_modules():
        for spec in re.findall(
            r'^\s*(?:import|export)[^"\']*from\s+"([^"]+)"', path.read_text(), re.M
        ):
            assert spec.startswith("."), f"{path.name}: bare import {spec} (no npm packages)"
            assert (path.parent / spec).resolve().is_file(), f"{path.name}: {spec} does not exist"


# -- size and syntax ---------------------------------------------------------------------


def gzipped_size(paths: list[Path]) -> int:
    return sum(len(gzip.compress(p.read_bytes(), compresslevel=9)) for p in paths)


def static_imports(entry: Path) -> set[Path]:
    """The modules a page parses before it runs `entry`: its static imports, transitively."""
    seen: set[Path] = set()
    todo = [entry.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for spec in re.findall(
            r'^\s*(?:import|export)[^"\'(]*from\s+"([^"]+)"', path.read_text(), re.M
        ):
            todo.append((path.parent / spec).resolve())
    return seen


def test_app_starts_with_under_110_kb_gzipped() -> None:
    startup = [PWA / "index.html", PWA / "css" / "app.css", *static_imports(PWA / "js" / "app.js")]
    total = gzipped_size(startup)
    assert total < STARTUP_GZIP_BUDGET, f"the app parses {total} bytes gzipped before it starts"


def test_lazy_screens_are_not_parsed_at_startup() -> None:
    startup = static_imports(PWA / "js" / "app.js")
    for name in (
        "team",
        "campaign",
        "checkins",
        "reassign",
        "history",
        "nearby",
        "merge",
        "rejected",
        "accounts",
    ):
        assert (PWA / "js" / "screens" / f"{name}.js").resolve() not in startup, name


def test_app_shell_is_under_180_kb_gzipped() -> None:
    code = [p for p in shell_files() if not url_of(p).startswith(f"/{LANGS}")]
    total = gzipped_size([*code, SW])
    assert total < SHELL_GZIP_BUDGET, f"app shell is {total} bytes gzipped"


def test_each_catalogue_is_small_precached_and_never_parsed_at_startup() -> None:
    catalogues = sorted((PWA / LANGS).glob("*.js"))
    assert catalogues, f"no catalogue under pwa/{LANGS}"
    startup = static_imports(PWA / "js" / "app.js")
    for path in catalogues:
        size = gzipped_size([path])
        assert size < CATALOGUE_GZIP_BUDGET, f"{path.name} is {size} bytes gzipped"
        assert url_of(path) in precache_list(), f"{path.name} is not precached"
        assert path.resolve() not in startup, f"{path.name} is imported statically"


def test_each_screen_loaded_on_demand_is_small_and_loaded_so() -> None:
    on_demand = sorted((PWA / ON_DEMAND).rglob("*.js"))
    assert on_demand, f"no module under pwa/{ON_DEMAND}"
    app = (PWA / "js" / "app.js").read_text()
    for path in on_demand:
        size = len(gzip.compress(path.read_bytes(), compresslevel=9))
        assert size < ON_DEMAND_GZIP_BUDGET, f"{path.name} is {size} bytes gzipped"
        assert f'onDemand("{path.stem}"' in app, f"app.js does not load {path.name} on demand"
    # No shell module imports one of them statically: it would be fetched with the shell.
    for path in shell_files():
        if path.suffix == ".js":
            assert "online/" not in "".join(
                re.findall(r'^\s*import[^"\']*from\s+"([^"]+)"', path.read_text(), re.M)
            ), f"{path.name} imports a module loaded on demand"


NODE = shutil.which("node")


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize("path", js_modules(), ids=lambda p: p.relative_to(PWA).as_posix())
def test_module_syntax(path: Path) -> None:
    # `node --check file.js` does not check ES modules reliably; stdin as a module does.
    result = subprocess.run(
        [NODE, "--input-type=module", "--check"],
        input=path.read_bytes(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_service_worker_syntax() -> None:
    result = subprocess.run(
        [NODE, "--check", str(SW)], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode()


PURE_LOGIC_CHECKS = """
import assert from "node:assert/strict";
import { tick, observe } from "%(js)s/hlc.js";
import { baseOf, overlay } from "%(js)s/records.js";
// A local write never goes back in time; the counter breaks ties.
assert.deepEqual(tick(undefined, 5), [5, 0]);
assert.deepEqual(tick([10, 3], 5), [10, 4]);
assert.deepEqual(tick([10, 3], 10), [10, 4]);
assert.deepEqual(tick([10, 3], 11), [11, 0]);
// After a sync the clock moves past hlc_max, so the next write is later than it.
const synced = observe([10, 3], [20, 7]);
assert.deepEqual(synced, [20, 7]);
assert.deepEqual(tick(synced, 15), [20, 8]);
assert.deepEqual(observe([30, 0], [20, 7]), [30, 0]);
// A pulled row keeps pending fields on top; a pending delete hides it.
const base = { id: "a", name: "Old", city: "Bonn" };
const row = overlay(base, 9, [{ mid: 1, id: "a", op: "upsert", fields: { name: "New" } }]);
assert.equal(row.name, "New");
assert.equal(row.city, "Bonn");
assert.equal(row._seq, 9);
assert.deepEqual(row._base, base);
assert.equal(overlay(base, 9, [{ mid: 2, id: "a", op: "delete", fields: {} }])._deleted, true);
assert.equal(overlay(null, null, []), null);
// Nothing pending: one copy, the row is its own base (baseOf gives it back without the
// phone's own fields); a row built over pending writes keeps its base apart.
const plain = overlay(base, 9, []);
assert.equal(plain._base, true);
assert.equal(plain._seq, 9);
assert.deepEqual(baseOf(plain), base);
assert.deepEqual(baseOf({ ...plain, _epoch: "e", _deleted: true }), base);
assert.deepEqual(baseOf(row), base);
assert.equal(baseOf({ id: "b", _base: null, _seq: null }), null);
assert.equal(baseOf(undefined), null);
process.exit(0);
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_clock_and_overlay_logic() -> None:
    script = PURE_LOGIC_CHECKS % {"js": (PWA / "js").as_uri()}
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode()


# -- test ids ----------------------------------------------------------------------------


# Hyphenated string literals in the scripts that are not test ids.
NOT_TESTIDS = {
    "current-password",
    "datetime-local",
    "from-image",
    "fieldcrm-sync",
    "no-store",
    "signed-out",
    "upgrade-required",
    "text-anchor",
    "utf-8",
}


def used_testids() -> set[str]:
    """Test ids in index.html and the scripts: `testid: "..."` props, plus every other
    hyphenated literal (passed to helpers such as link() and section()) that is not a CSS
    class, an aria-/data- attribute name or one of NOT_TESTIDS."""
    ids = set(re.findall(r'data-testid="([^"]+)"', (PWA / "index.html").read_text()))
    css_classes = set(re.findall(r"\.([a-z][a-z0-9-]*)", (PWA / "css" / "app.css").read_text()))
    for path in js_modules():
        if (PWA / LANGS) in path.parents:
            continue  # a catalogue's words, not ids
        text = path.read_text()
        ids |= set(re.findall(r'testid: "([^"]+)"', text))
        ids |= set(re.findall(r"testid=([a-z0-9-]+)\]", text))
        for literal in re.findall(r'"([a-z][a-z0-9]*(?:-[a-z0-9]+)+)"', text):
            if literal in css_classes or literal in NOT_TESTIDS:
                continue
            if not literal.startswith(("aria-", "data-")):
                ids.add(literal)
    return ids


def test_every_testid_is_documented() -> None:
    documented = set(re.findall(r"`([a-z][a-z0-9-]*)`", DOCS.read_text()))
    missing = sorted(used_testids() - documented)
    assert not missing, f"docs/pwa.md does not list these data-testids: {missing}"


def test_the_issue_testids_exist() -> None:
    required = {
        "login-username",
        "login-password",
        "login-submit",
        "nav-today",
        "nav-accounts",
        "nav-tasks",
        "nav-conflicts",
        "sync-badge",
        "pending-count",
        "account-search",
        "account-row",
        "visit-outcome",
        "visit-summary",
        "visit-save",
        "followup-title",
        "followup-remind-at",
        "note-body",
        "note-save",
        "conflict-row",
        "conflict-keep-mine",
        "conflict-keep-theirs",
        "update-ready",
        "update-reload",
        "sync-now",
        "rejected-indicator",
    }
    assert not required - used_testids()


def test_stylesheets_close_every_rule() -> None:
    """Every rule is closed before the next opens (only @media, @container, @supports and
    @keyframes hold rules): a merge that drops a `}` turns the rest of the file into a rule
    the browser ignores."""
    for path in sorted(PWA.rglob("*.css")):
        open_rules: list[tuple[int, str]] = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            text = line.strip()
            if text.endswith("{"):
                if open_rules and not open_rules[-1][1].startswith("@"):
                    where = f"{path.name}:{number}"
                    raise AssertionError(f"{where} {text} opens inside {open_rules[-1]}")
                open_rules.append((number, text))
            elif "}" in text and "{" not in text:
                assert open_rules, f"{path.name}:{number} closes a rule never opened"
                open_rules.pop()
        assert not open_rules, f"{path.name}: never closed: {open_rules}"
