"""The message catalogue (docs/i18n.md): every text the PWA shows goes through t(), tn()
or mark() (pwa/js/i18n.js) or a data-i18n attribute of index.html; every such key has
its French translation, and the French catalogue holds nothing the app no longer says.
A practical scan also finds literal text left outside the catalogue."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

PWA = Path(__file__).resolve().parents[2] / "pwa"
LANGS = PWA / "js" / "lang"
PREFIX = "export default "

# One JS string literal, double quotes (the house style for text).
STR = r'"((?:[^"\\\n]|\\.)*)"'
T_CALL = re.compile(r"\b(?:t|mark)\(\s*" + STR)
TC_CALL = re.compile(r"\btc\(\s*" + STR + r"\s*,\s*" + STR)
TN_CALL = re.compile(r"\btn\(\s*" + STR + r"\s*,\s*" + STR)
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def js_files() -> list[Path]:
    return sorted(p for p in (PWA / "js").rglob("*.js") if LANGS not in p.parents)


def keyed_files() -> list[Path]:
    """Where keys are used: the modules, and the service worker's reminders."""
    return [*js_files(), PWA / "sw.js"]


def unescape(literal: str) -> str:
    return json.loads(f'"{literal}"')


def catalogue(lang: str) -> dict[str, str | dict[str, str]]:
    text = (LANGS / f"{lang}.js").read_text()
    assert text.startswith(PREFIX), f"{lang}.js starts with {PREFIX!r}"
    body = text[len(PREFIX) :].strip().removesuffix(";")
    data = json.loads(body)
    assert isinstance(data, dict)
    return data


class ShellText(HTMLParser):
    """index.html's words: the text of data-i18n elements, the attributes data-i18n-attr
    names, and any other text with letters (which should not be there)."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()
        self.loose: list[str] = []
        self.stack: list[str | None] = []
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.in_body = True
        for name in (a.get("data-i18n-attr") or "").split():
            value = a.get(name)
            assert value, f"<{tag}> data-i18n-attr names {name}, which it lacks"
            self.keys.add(value)
        for name in ("aria-label", "title", "placeholder", "alt"):
            if a.get(name) and name not in (a.get("data-i18n-attr") or "").split():
                self.loose.append(f"<{tag} {name}={a[name]!r}>")
        if tag not in ("meta", "link", "path", "rect", "circle", "br", "input"):
            # None: no data-i18n; "": translated; "tab": translated in that context (tc)
            self.stack.append(a["data-i18n"] or "" if "data-i18n" in a else None)

    def handle_endtag(self, tag: str) -> None:
        if tag not in ("meta", "link", "path", "rect", "circle", "br", "input") and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if not (self.in_body and re.search(r"[A-Za-z]", text)):
            return
        if self.stack and self.stack[-1] is not None:
            self.keys.add(f"{self.stack[-1]}|{text}" if self.stack[-1] else text)
        elif text not in SHELL_ALLOWED:
            self.loose.append(text)


SHELL_ALLOWED = {"fieldcrm"}  # the product's name


def shell_text() -> ShellText:
    page = ShellText()
    page.feed((PWA / "index.html").read_text())
    return page


def without_comments(src: str) -> str:
    """The source with its comments blanked (lines kept, so line numbers hold)."""
    src = re.sub(r"^\s*//.*$|(?<=[;,{(\s])\s+// .*$", "", src, flags=re.M)
    return re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), src, flags=re.S)


def used_keys() -> dict[str, set[str]]:
    """Key -> the files that use it (a plural's key is its English `other` form)."""
    used: dict[str, set[str]] = {}
    for path in keyed_files():
        src = without_comments(path.read_text())
        name = path.relative_to(PWA).as_posix()
        for m in T_CALL.finditer(src):
            used.setdefault(unescape(m.group(1)), set()).add(name)
        for m in TN_CALL.finditer(src):
            used.setdefault(unescape(m.group(2)), set()).add(name)
        for m in TC_CALL.finditer(src):
            used.setdefault(f"{unescape(m.group(1))}|{unescape(m.group(2))}", set()).add(name)
    for key in shell_text().keys:
        used.setdefault(key, set()).add("index.html")
    return used


def plurals_used() -> dict[str, str]:
    """A plural's `other` form -> its `one` form."""
    found: dict[str, str] = {}
    for path in keyed_files():
        for m in TN_CALL.finditer(without_comments(path.read_text())):
            found[unescape(m.group(2))] = unescape(m.group(1))
    return found


def test_keys_are_literal_strings() -> None:
    # A key built at run time cannot be checked: t(variable) only for mark()ed texts.
    for path in js_files():
        src = path.read_text()
        for m in re.finditer(r"\b(t|tn)\(\s*`", src):
            line = src.count("\n", 0, m.start()) + 1
            raise AssertionError(
                f"{path.name}:{line}: a template literal as a key; use {{name}} params"
            )


SHADOW = re.compile(
    r"\(\s*t\s*[,)]\s*=>|(?<![\w.])t\s*=>|\b(const|let|var)\s+t\b|\(\s*t\s*,\s*\w+\s*\)\s*=>"
)


def test_no_module_hides_t_behind_a_variable() -> None:
    # `tasks.map((t) => t("Done"))` would call the task: a module that translates never
    # names anything else `t`.
    for path in js_files():
        src = without_comments(path.read_text())
        if re.search(r"import \{[^}]*\bt\b[^}]*\} from", src):
            m = SHADOW.search(src)
            assert not m, f"{path.name}:{src.count(chr(10), 0, m.start()) + 1}: `t` bound here"


def test_every_key_has_its_french() -> None:
    fr = catalogue("fr")
    # A key in a context ("tab|Today") may fall back on the text's own translation.
    missing = sorted(
        f"{key!r} ({', '.join(sorted(files))})"
        for key, files in used_keys().items()
        if key not in fr and key.partition("|")[2] not in fr
    )
    assert not missing, "missing from fr.js:\n" + "\n".join(missing)


def server_error_codes() -> set[str]:
    """Every quoted snake_case word of the server's and the sync engine's code: the error
    codes it can answer are among them."""
    root = PWA.parent
    words: set[str] = set()
    for path in [*(root / "server").rglob("*.py"), *(root / "sync").rglob("*.py")]:
        words |= set(re.findall(r'"([a-z][a-z_]*)"', path.read_text()))
    return words


def test_the_french_catalogue_has_no_unused_key() -> None:
    used = used_keys()
    codes = server_error_codes()
    # "error|CODE": the sentence for a server error's code (serverError in i18n.js).
    unused = sorted(
        key
        for key in catalogue("fr")
        if key not in used and not (key.startswith("error|") and key[6:] in codes)
    )
    assert not unused, "unused in fr.js:\n" + "\n".join(map(repr, unused))


def test_translations_keep_their_placeholders_and_plural_forms() -> None:
    fr = catalogue("fr")
    plurals = plurals_used()
    for key, value in fr.items():
        want = set(PLACEHOLDER.findall(key))
        if key in plurals:
            assert isinstance(value, dict) and {"one", "other"} <= set(value), (
                f"{key!r}: plural forms"
            )
            forms = list(value.values())
            want |= set(PLACEHOLDER.findall(plurals[key]))
        else:
            assert isinstance(value, str) and value.strip(), f"{key!r}: a translation"
            forms = [value]
        for form in forms:
            got = set(PLACEHOLDER.findall(form))
            assert got <= want, f"{key!r} -> {form!r}: placeholders {got - want} unknown"
        assert set().union(*(set(PLACEHOLDER.findall(f)) for f in forms)) >= want - {"n"}, (
            f"{key!r}: the translation drops a placeholder"
        )


def test_the_shell_has_no_untranslated_text() -> None:
    assert not shell_text().loose, shell_text().loose


# -- literal text left outside the catalogue ---------------------------------------------

# A literal that reads like words shown to a person: two words, or a capitalised word.
WORDY = re.compile(r"[A-Za-z]{2,}[,.:;!?…]? +[A-Za-z(“\"]|^[A-Z][a-z]+[.!…]?$")
# Where a literal is not text for a person: before it on its line.
NOT_TEXT = re.compile(
    r"(console\.\w+\(|querySelector(All)?\(|closest\(|matches\(|class: ?|className ?= ?|"
    r"classList\.\w+\(|import\(|new Set\(|matchMedia\(|\bfrom |"
    r"new (DOMException|RangeError|TypeError)\(|"
    r"addEventListener\(|dispatchEvent|postMessage|dataset\.\w+ ?= ?|testid: ?|"
    r"setAttribute\(\"(data-[\w-]+|class|role|rel|type)\", |(?<![\w.])(emit|on|t|tn|mark)\()\s*$"
)
# Literals that are not words for a person, each with why.
ALLOWED = {
    "fieldcrm",  # the product's name
    "Bearer",  # the HTTP authorisation scheme
    "Notification",  # a Web API's name ("Notification" in window)
    "Natural Earth, GeoNames",  # the basemap's sources, named as their licences ask
    "unknown table",  # a programming error's message, never shown
    "English",  # a language's name in its own words (i18n.js LANGUAGES)
    "Mac Roman",  # character encodings' names (import.js)
    "DOS Latin-1",
}
ALLOWED_FILES: set[str] = set()


def without_substitutions(template: str) -> str:
    """A template literal's text with each ${...} (braces balanced) as a space."""
    out, depth, i = [], 0, 0
    while i < len(template):
        if depth == 0 and template.startswith("${", i):
            depth, i = 1, i + 2
            out.append(" ")
            continue
        if depth:
            depth += {"{": 1, "}": -1}.get(template[i], 0)
        else:
            out.append(template[i])
        i += 1
    return "".join(out)


# CSS class lists: lowercase words, one at least with a hyphen.
CLASSES = re.compile(r"(?=.*-)[a-z0-9-]+( [a-z0-9-]+)*")


def loose_literals(src: str) -> list[tuple[int, str]]:
    # Drop comments, then every catalogue call's own literals.
    src = without_comments(src)
    for call in (TN_CALL, TC_CALL, T_CALL):
        src = call.sub(lambda m: re.sub(STR, '""', m.group()), src)
    found = []
    for m in re.finditer(STR + r"|`((?:[^`\\]|\\.)*)`", src):
        text = m.group(1) if m.group(1) is not None else m.group(2)
        before = src[src.rfind("\n", 0, m.start()) + 1 : m.start()]
        if m.group(2) is not None:
            text = without_substitutions(text)
        if not WORDY.search(text.strip()) or text.strip() in ALLOWED or NOT_TEXT.search(before):
            continue
        if CLASSES.fullmatch(text.strip()):
            continue
        if re.fullmatch(r"[\w.:/#\[\]=\"' -]*", text) and ("=" in text or "/" in text):
            continue  # selectors, paths
        found.append((src.count("\n", 0, m.start()) + 1, text.strip()))
    return found


def test_no_literal_text_outside_the_catalogue() -> None:
    loose = []
    for path in js_files():
        name = path.relative_to(PWA).as_posix()
        if name in ALLOWED_FILES:
            continue
        loose += [f"{name}:{line}: {text!r}" for line, text in loose_literals(path.read_text())]
    assert not loose, f"{len(loose)} literals outside the catalogue:\n" + "\n".join(loose)


# -- the catalogue's logic, run in node as a phone in each language would -----------------

NODE = shutil.which("node")
LOGIC = """
import assert from "node:assert/strict";
globalThis.navigator = { languages: [%(tag)s], language: %(tag)s };
const i18n = await import("%(js)s/i18n.js");
const { lang, t, tn, tc, serverError, formatMoney, formatList } = i18n;
const checks = %(checks)s;
for (const [got, want] of checks(i18n)) {
  if (want instanceof RegExp) assert.match(got, want);
  else assert.equal(got, want);
}
process.exit(0);
"""
FRENCH = """({ lang, t, tn, tc, serverError, formatMoney, formatList }) => [
  [lang, "fr"],
  [t("Offline"), "Hors ligne"],
  [t("Due {when}", { when: "demain" }), "Échéance demain"],
  [t("Not in the catalogue {x}", { x: 1 }), "Not in the catalogue 1"],
  [tn("{n} account", "{n} accounts", 0), "0 compte"],
  [tn("{n} account", "{n} accounts", 1), "1 compte"],
  [tn("{n} account", "{n} accounts", 2), "2 comptes"],
  [tn("{n} account", "{n} accounts", 1500), /^1\\s500 comptes$/u],
  [tc("tab", "Today"), "Journée"],
  [tc("tab", "Accounts"), "Comptes"],
  [serverError("not_found", "There is no account with this id."), "Cette fiche n’existe plus."],
  [serverError("some_new_code", "The server's sentence."), "The server's sentence."],
  [formatMoney(1200.5, "EUR"), /^1\\s200,50\\s€$/u],
  [formatMoney(3, "points"), "3 points"],
  [formatList(["a", "b", "c"]), "a, b et c"],
]"""
ENGLISH = """({ lang, t, tn, tc, serverError, formatMoney, formatList }) => [
  [lang, "en"],
  [t("Offline"), "Offline"],
  [tn("{n} account", "{n} accounts", 1), "1 account"],
  [tn("{n} account", "{n} accounts", 0), "0 accounts"],
  [tc("tab", "Today"), "Today"],
  [serverError("not_found", "There is no such id."), "There is no such id."],
  [serverError("not_found", ""), "Something went wrong"],
  [formatMoney(1200.5, "EUR"), "€1,200.50"],
  [formatList(["a", "b", "c"]), "a, b, and c"],
]"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
@pytest.mark.parametrize(("tag", "checks"), [("fr-FR", FRENCH), ("en-US", ENGLISH)])
def test_a_phone_in_each_language_gets_its_words_plurals_and_formats(tag: str, checks: str) -> None:
    assert NODE is not None
    script = LOGIC % {"tag": json.dumps(tag), "js": (PWA / "js").as_uri(), "checks": checks}
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", script], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
