"""The PWA's account search (pwa/js/search.js), run in node as the browser runs it: what a
rep types finds the account by name, city, street, postcode, phone or a contact's name,
blind to case and accents, each word matching a word's start; the four orders of the
accounts list; a search as the rep types narrows the previous one and finds the same; the index as
IndexedDB keeps it finds the same once joined with the accounts again."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parents[2] / "pwa" / "js"
NODE = shutil.which("node")

CHECKS = """
import assert from "node:assert/strict";
import {
  buildIndex, compactIndex, findAccounts, fold, joinIndex, searchAsTyped, sortAccounts,
} from "%(js)s/search.js";

assert.equal(fold("Saint-Étienne"), "saint etienne");
assert.equal(fold("  L'ŒUVRE, Straße 12 "), "l oeuvre strasse 12");
assert.equal(fold(null), "");

const accounts = [
  { id: "halles", name: "Les Halles de Lyon", city: "Lyon", street: "102 Cours Lafayette",
    postal_code: "69003", phone: "+33 4 78 62 39 33", status: "customer",
    lat: 45.7631, lng: 4.8510, owner_id: "u-bruno", last_visit_at: "2026-12-01T09:00:00Z" },
  { id: "epicerie", name: "Épicerie Dupré", city: "Saint-Étienne", street: "3 place Jean Jaurès",
    postal_code: "42000", phone: "04 77 12 34 56", status: "prospect",
    lat: 45.4397, lng: 4.3872, owner_id: "u-alice", last_visit_at: "2026-12-03T14:00:00Z" },
  { id: "droguerie", name: "Droguerie Martin", city: "Villeurbanne", street: "rue Anatole France",
    postal_code: "69100", phone: null, status: "customer", owner_id: null },
  { id: "fromagerie", name: "fromagerie girard", city: "Lyon", postal_code: "69007",
    status: "inactive", lat: 45.7485, lng: 4.8467, owner_id: "u-alice" },
];
const contacts = [
  { account_id: "droguerie", name: "Camille Roux", phone: "06 12 34 56 78" },
  { account_id: "halles", name: "Noé Benali", phone: null },
];
const index = buildIndex(accounts, contacts);
const ids = (query, status) => findAccounts(index, query, status).map((a) => a.id).sort();

// Name, city, street, postcode, phone, contact: each found, case- and accent-blind.
assert.deepEqual(ids("halles"), ["halles"]);
assert.deepEqual(ids("EPICERIE"), ["epicerie"]);
assert.deepEqual(ids("dupre"), ["epicerie"]);
assert.deepEqual(ids("saint etienne"), ["epicerie"]);
assert.deepEqual(ids("Saint-Étienne"), ["epicerie"]);
assert.deepEqual(ids("lyon"), ["fromagerie", "halles"]);
assert.deepEqual(ids("lafayette"), ["halles"]);
assert.deepEqual(ids("cours lafay"), ["halles"]);
assert.deepEqual(ids("jaures"), ["epicerie"]);
assert.deepEqual(ids("69003"), ["halles"]);
assert.deepEqual(ids("690"), ["fromagerie", "halles"]);
assert.deepEqual(ids("69"), ["droguerie", "fromagerie", "halles"]);
assert.deepEqual(ids("04 77 12"), ["epicerie"]);
assert.deepEqual(ids("0477123456"), ["epicerie"]);
assert.deepEqual(ids("04 78 62 39 33"), ["halles"]);  // stored as +33 4 78...
assert.deepEqual(ids("+33 4 78"), ["halles"]);
assert.deepEqual(ids("06.12.34"), ["droguerie"]);  // a contact's phone
assert.deepEqual(ids("camille"), ["droguerie"]);
assert.deepEqual(ids("roux"), ["droguerie"]);
assert.deepEqual(ids("noe"), ["halles"]);
// Every word must match, each at the start of a word.
assert.deepEqual(ids("lyon girard"), ["fromagerie"]);
assert.deepEqual(ids("lyon paris"), []);
assert.deepEqual(ids("ette"), []);
assert.deepEqual(ids("alles"), []);
assert.deepEqual(ids("zzz"), []);
// The status filter, and an empty search.
assert.deepEqual(ids("lyon", "customer"), ["halles"]);
assert.deepEqual(ids("", "customer"), ["droguerie", "halles"]);
assert.deepEqual(ids("   "), ["droguerie", "epicerie", "fromagerie", "halles"]);

const order = (by, options) => sortAccounts(accounts, by, options).map((a) => a.id);
// By name: accents and case do not move a name.
assert.deepEqual(order("name"), ["droguerie", "epicerie", "fromagerie", "halles"]);
assert.deepEqual(order(), ["droguerie", "epicerie", "fromagerie", "halles"]);
// Nearest: from Bellecour in Lyon; an account with no position last.
const bellecour = { lat: 45.7578, lng: 4.832 };
assert.deepEqual(order("nearest", { position: bellecour }),
  ["fromagerie", "halles", "epicerie", "droguerie"]);
// Nearest without a position: by name.
assert.deepEqual(order("nearest"), order("name"));
// Last visited first, never visited last (by name).
assert.deepEqual(order("visited"), ["epicerie", "halles", "droguerie", "fromagerie"]);
// By owner's name, then name; no owner last.
const names = new Map([["u-alice", "alice"], ["u-bruno", "Bruno"]]);
assert.deepEqual(order("owner", { names }), ["epicerie", "fromagerie", "halles", "droguerie"]);
// A copy: the list given is left as it was.
assert.equal(accounts[0].id, "halles");

// The index is in name order, and so is what a search finds.
assert.deepEqual(index.map((e) => e.account.id), order("name"));
assert.deepEqual(findAccounts(index, "lyon").map((a) => a.id), ["fromagerie", "halles"]);

// As typed: each keystroke finds what a search from scratch finds, narrowing or not
// (a longer word, a new word, a phone number growing from a postcode's digits, a status,
// a letter taken back).
const typed = [
  ["", ""], ["l", ""], ["ly", ""], ["lyo", ""], ["lyon", ""], ["lyon ", ""], ["lyon g", ""],
  ["lyon", ""], ["lyon", "customer"], ["", "customer"], ["", ""], ["0", ""], ["04", ""],
  ["047", ""], ["0477", ""], ["04 77 1", ""], ["6", ""], ["69", ""], ["690", ""], ["6900", ""],
  ["06.1", ""], ["06.12", ""], ["c", ""], ["ca", ""], ["cam", ""], ["camx", ""], ["cam", ""],
];
let previous = null;
for (const [query, status] of typed) {
  previous = searchAsTyped(index, query, status, previous);
  assert.deepEqual(previous.entries.map((e) => e.account.id),
    findAccounts(index, query, status).map((a) => a.id), `as typed: ${query} ${status}`);
}
// A query of digits that becomes a phone number looks at every account again: "04" is no
// phone number (words only), "047" is (phones too).
const two = searchAsTyped(index, "04", "", null);
assert.deepEqual(two.entries.map((e) => e.account.id), []);
assert.deepEqual(searchAsTyped(index, "047", "", two).entries.map((e) => e.account.id),
  ["epicerie", "halles"]);  // 4 78... holds 47
// Another index (the rows changed) starts again.
const other = buildIndex(accounts.slice(0, 1));
assert.deepEqual(searchAsTyped(other, "lyon", "", searchAsTyped(index, "l", "", null))
  .entries.map((e) => e.account.id), ["halles"]);

// The index as IndexedDB keeps it (js/search-worker.js): plain arrays that survive a
// structured clone, and back over the accounts as they are finds the same, in the same
// order.
const compact = structuredClone(compactIndex(index));
assert.deepEqual(compact[0], ["droguerie",
  " droguerie martin villeurbanne rue anatole france 69100 camille roux ", " 0612345678 "]);
const again = joinIndex(compact, accounts);
assert.deepEqual(again, index);
for (const query of ["lyon", "camille", "04 77", "69", ""]) {
  assert.deepEqual(findAccounts(again, query), findAccounts(index, query), query);
}
// An account gone since is dropped; one newer than the index is added (at the end) and
// found; the rows it shows are the phone's own, not the index's copies.
const renamed = { ...accounts[0], name: "Les Halles (rénovées)" };
const now = [renamed, accounts[1], accounts[3], { id: "cave", name: "Cave Rivière", city: "Bron" }];
const joined = joinIndex(compact, now, contacts);
assert.deepEqual(joined.map((e) => e.account.id), ["epicerie", "fromagerie", "halles", "cave"]);
assert.equal(joined[2].account, renamed);
assert.deepEqual(findAccounts(joined, "riviere").map((a) => a.id), ["cave"]);
assert.deepEqual(findAccounts(joined, "martin"), []);
process.exit(0);
"""


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_account_search_and_orders() -> None:
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--input-type=module", "-e", CHECKS % {"js": JS.as_uri()}],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
