// Duplicates and merges (SPEC section 9), for managers; loaded when first opened (a
// dynamic import() from js/app.js), not with the shell.
//   #/duplicates[?table=contacts]: the groups GET /api/duplicates finds (online), and the
//     merges made on this phone, each with its Undo.
//   #/merge?table=accounts&ids=A,B: pick the survivor and each field's value, see what
//     moves (counted on this phone), merge (POST /api/merge, online), undo.
// The merged-away records reach every phone as deletes that name the survivor (rule 13).

import { t, tn } from "../i18n.js";
import { apiFetch, errorDetail, NetworkError } from "../api.js";
import { getMeta, read, write } from "../db.js";
import { getRecord } from "../records.js";
import { session, userNames } from "../session.js";
import { syncNow } from "../sync.js";
import { HANGING, hangingOff, isManager } from "../team.js";
import { LABELS, empty, formatDateTime, h, link, section } from "../ui.js";

const T = {
  duplicates: t("Duplicates"),
  merge: t("Merge"),
  mergeTitle: (n) => (n === 2 ? t("Merge 2 duplicates") : t("Merge {n} records", { n })),
  notManager: t("Merging duplicates is for managers."),
  tabs: { accounts: t("Accounts"), contacts: t("Contacts") },
  tables: {
    contacts: (n) => tn("contact", "contacts", n), visits: (n) => tn("visit", "visits", n),
    notes: (n) => tn("note", "notes", n), tasks: (n) => tn("task", "tasks", n), deals: (n) => tn("deal", "deals", n),
  },
  loading: t("Looking for duplicates…"),
  offline: t("Merging needs a connection. Nothing has changed."),
  offlineList: t("Finding duplicates needs a connection. The merges made on this phone are below."),
  failed: (why) => t("The server did not answer ({why}).", { why }),
  none: t("No likely duplicates among what you see."),
  notHere: t("not on this phone yet"),
  reasons: { name: t("similar name"), phone: t("same phone"), email: t("same email"), website: t("same website"),
    distance: (m) => t("{metres} m apart", { metres: m }) },
  recent: t("Merges made on this phone"),
  recentNone: t("None yet."),
  merged: (n, name) => t("{n} merged into {name}", { n, name }),
  undone: t("Undone"),
  undo: t("Undo"),
  open: t("Open"),
  missing: t("Some of these records are not on this phone (yet, or any more): sync, then try again."),
  keep: t("Keep which one?"),
  keepHint: t("The others are merged into it: their ids then stand for it on every phone."),
  fields: t("Values to keep"),
  fieldsNone: t("They hold the same values: nothing to choose."),
  emptyValue: t("(empty)"),
  moves: (name) => t("Moves to {name}, as counted on this phone:", { name }),
  movesNone: t("Nothing hangs off the others."),
  gone: (n) => tn("{n} record will be deleted, merged into the one kept. Undo brings it back.",
    "{n} records will be deleted, merged into the one kept. Undo brings them back.", n),
  unsent: t("Work reps have not sent yet on the merged records lands on the one kept when their phones sync: nothing is lost."),
  confirm: (n) => t("Merge {n} into 1", { n: n + 1 }),
  working: t("Merging…"),
  done: (name) => t("Merged into {name}.", { name }),
  undoing: t("Undoing…"),
  undoneDone: (n, kept) => [tn("Undone: {n} record back.", "Undone: {n} records back.", n),
    kept ? tn("{n} change made since stays as it is.", "{n} changes made since stay as they are.", kept) : ""].join(" ").trim(),
  back: t("Back to duplicates"),
  whatMoves: t("What moves"),
  whatHappens: t("What happens"),
};
const FIELDS = {
  accounts: ["name", "status", "phone", "email", "website", "street", "city", "postal_code", "region",
    "country", "position", "owner_id"],
  contacts: ["name", "title", "phone", "email", "account_id"],
};
const FIELD_LABELS = {
  name: t("Name"), status: t("Status"), phone: t("Phone"), email: t("Email"), website: t("Website"), street: t("Street"),
  city: t("City"), postal_code: t("Postal code"), region: t("Region"), country: t("Country"), position: t("Position"),
  owner_id: t("Owner"), title: t("Job title"), account_id: t("Account"),
};
const RECENT = 20;

const label = (name) => FIELD_LABELS[name] || name[0].toUpperCase() + name.slice(1);
const tableOf = (query) => (query.get("table") === "contacts" ? "contacts" : "accounts");

function valueOf(record, name) {
  if (name === "position") {
    return record.lat == null || record.lng == null ? null
      : `${Number(record.lat).toFixed(5)}, ${Number(record.lng).toFixed(5)}`;
  }
  const value = record[name];
  return value === undefined || value === "" ? null : value;
}

function notManager(title) {
  return { title, el: h("div", { class: "screen" }, h("h1", {}, title), empty(T.notManager, "merge-not-manager")) };
}

async function call(path, body) {
  try {
    const answer = await apiFetch(path, { method: "POST", body, token: session().token, timeoutMs: 30000 });
    return answer.status === 200 ? { ok: true, data: answer.data }
      : { ok: false, error: errorDetail(answer, t("The server answered {status}.", { status: answer.status })) };
  } catch (err) {
    if (!(err instanceof NetworkError)) throw err;
    return { ok: false, error: err.message };
  }
}

// The merges made on this phone (meta "merges_made"), newest first, for their Undo.
async function recentMerges() {
  return (await getMeta("merges_made")) || [];
}

async function remember(change) {
  await write(["meta"], async (s) => {
    const list = (await s.meta.get("merges_made")) || [];
    const next = change(list).slice(0, RECENT);
    await s.meta.put(next, "merges_made");
  });
}

async function undo(entry, status) {
  status.textContent = T.undoing;
  const result = await call(`/api/merge/${encodeURIComponent(entry.merge_id)}/undo`);
  if (!result.ok) {
    status.textContent = result.error;
    status.dataset.state = "failed";
    return false;
  }
  await remember((list) => list.map((m) => (m.merge_id === entry.merge_id ? { ...m, undone: true } : m)));
  status.textContent = T.undoneDone(result.data.restored.length, result.data.kept.length);
  status.dataset.state = "undone";
  syncNow();
  return true;
}

function recentRow(entry) {
  const status = h("span", { class: "row-sub", role: "status", testid: "merge-recent-status" },
    entry.undone ? T.undone : formatDateTime(entry.at));
  const button = h("button", { type: "button", testid: "merge-recent-undo", hidden: entry.undone || null });
  button.textContent = T.undo;
  button.addEventListener("click", async () => {
    button.disabled = true;
    if (await undo(entry, status)) button.hidden = true;
    else button.disabled = false;
  });
  return h("li", { class: "row", testid: "merge-recent", dataset: { id: entry.merge_id } },
    h("span", { class: "row-main" },
      h("span", { class: "row-title" }, T.merged(entry.merged_names.length, entry.survivor_name)), status),
    h("span", { class: "row-actions" }, button));
}

function reasonText(reason) {
  if (reason.startsWith("distance_m=")) return T.reasons.distance(Math.round(Number(reason.slice(11))));
  return T.reasons[reason] || reason;
}

export async function duplicatesScreen(_params, query) {
  if (!isManager()) return notManager(T.duplicates);
  const table = tableOf(query);
  const body = h("div", { testid: "duplicates-body" }, h("p", { class: "hint" }, T.loading));
  const tabs = h("p", { class: "merge-tabs" }, ["accounts", "contacts"].map((tab) =>
    h("a", { href: `#/duplicates?table=${tab}`, testid: `duplicates-tab-${tab}`,
      class: tab === table ? "button-link primary" : "button-link", "aria-current": tab === table ? "page" : null }, T.tabs[tab])));
  const recent = await recentMerges();
  const el = h("div", { class: "screen merge" }, h("h1", {}, T.duplicates), tabs, body,
    section(T.recent, "merge-recent-list", recent.length
      ? h("ul", { class: "list" }, recent.map(recentRow)) : empty(T.recentNone, "merge-recent-none")));

  (async () => {
    if (!navigator.onLine) {
      body.replaceChildren(empty(T.offlineList, "duplicates-offline"));
      return;
    }
    let answer;
    try {
      answer = await apiFetch(`/api/duplicates/${table}?limit=100`, { token: session().token, timeoutMs: 30000 });
    } catch (err) {
      if (!(err instanceof NetworkError)) throw err;
      body.replaceChildren(empty(T.offlineList, "duplicates-offline"));
      return;
    }
    if (answer.status !== 200 || !answer.data) {
      body.replaceChildren(empty(T.failed(errorDetail(answer, String(answer.status))), "duplicates-failed"));
      return;
    }
    const groups = answer.data.groups || [];
    const rows = [];
    for (const group of groups) {
      const records = await Promise.all(group.ids.map((id) => getRecord(table, id)));
      const names = records.map((r) => (r ? r.name : T.notHere));
      rows.push(h("li", { class: "row", testid: "duplicate-group", dataset: { ids: group.ids.join(",") } },
        h("a", { class: "row-main", href: `#/merge?table=${table}&ids=${group.ids.join(",")}`, testid: "duplicate-group-open" },
          h("span", { class: "row-title" }, names.join(" · ")),
          h("span", { class: "row-sub" }, group.reasons.map(reasonText).join(", ")))));
    }
    body.replaceChildren(rows.length ? h("ul", { class: "list", testid: "duplicate-groups" }, rows)
      : empty(T.none, "duplicates-none"));
  })();
  return { title: T.duplicates, el };
}

// The value each field takes by default: the survivor's, unless it is empty and another
// record has one.
function defaults(records, survivorId, names) {
  const chosen = {};
  const survivor = records.find((r) => r.id === survivorId);
  for (const name of names) {
    const other = records.find((r) => valueOf(r, name) !== null);
    chosen[name] = valueOf(survivor, name) !== null || !other ? survivorId : other.id;
  }
  return chosen;
}

// The record a group keeps by default: the one with the most values, then the oldest.
function likelySurvivor(records, table) {
  const filled = (r) => FIELDS[table].filter((n) => valueOf(r, n) !== null).length;
  return [...records].sort((a, b) => filled(b) - filled(a)
    || String(a.created_at || "").localeCompare(String(b.created_at || "")))[0].id;
}

export async function mergeScreen(_params, query) {
  if (!isManager()) return notManager(T.merge);
  const table = tableOf(query);
  const ids = [...new Set((query.get("ids") || "").split(",").filter(Boolean))];
  const records = (await Promise.all(ids.map((id) => getRecord(table, id)))).filter(Boolean);
  const heading = h("h1", {}, T.mergeTitle(records.length));
  const back = link(T.back, `#/duplicates?table=${table}`, "merge-back", "button-link");
  if (records.length < 2 || records.length !== ids.length) {
    return { title: T.merge, el: h("div", { class: "screen merge" }, heading, empty(T.missing, "merge-missing"), back) };
  }
  const [names, accounts] = await Promise.all([userNames(), read(["accounts"], (s) => s.accounts.getAll())]);
  const accountNames = new Map(accounts.map((a) => [a.id, a.name]));
  const shown = (name, value) => {
    if (value === null) return T.emptyValue;
    if (name === "owner_id") return names.get(value) || value;
    if (name === "account_id") return accountNames.get(value) || value;
    if (name === "status") return LABELS.status[value] || value;
    return String(value);
  };
  const differing = FIELDS[table].filter((n) => new Set(records.map((r) => JSON.stringify(valueOf(r, n)))).size > 1);
  let survivorId = likelySurvivor(records, table);
  let chosen = defaults(records, survivorId, differing);
  const touched = new Set();

  const keepList = h("div", { class: "stack", testid: "merge-survivors" });
  const fieldsBox = h("div", { class: "stack", testid: "merge-fields" });
  const moves = h("div", { testid: "merge-moves" });
  const offline = h("p", { class: "notice", role: "alert", testid: "merge-offline", hidden: true }, T.offline);
  const confirm = h("button", { type: "button", class: "primary", testid: "merge-confirm" }, T.confirm(records.length - 1));
  const status = h("div", { role: "status", testid: "merge-status", "aria-live": "polite" });
  const undoButton = h("button", { type: "button", testid: "merge-undo", hidden: true }, T.undo);
  let made = null;

  const radio = (group, value, checked, text, testid, onchange) => {
    const id = `${group}-${value}`;
    return h("div", { class: "field field-check merge-choice" },
      h("input", { type: "radio", id, name: group, value, checked, testid, onchange }),
      h("label", { for: id }, text));
  };

  function drawSurvivors() {
    keepList.replaceChildren(...records.map((r) => radio("merge-survivor", r.id, r.id === survivorId,
      `${r.name}${r.city ? ` (${r.city})` : ""}`, "merge-survivor", () => {
        survivorId = r.id;
        const fresh = defaults(records, survivorId, differing);
        for (const name of differing) if (!touched.has(name)) chosen[name] = fresh[name];
        draw();
      })));
  }

  function drawFields() {
    if (!differing.length) {
      fieldsBox.replaceChildren(empty(T.fieldsNone, "merge-fields-none"));
      return;
    }
    fieldsBox.replaceChildren(...differing.map((name) => h("fieldset", { testid: "merge-field", dataset: { field: name } },
      h("legend", {}, label(name)),
      records.map((r) => radio(`merge-field-${name}`, r.id, chosen[name] === r.id, shown(name, valueOf(r, name)),
        "merge-field-value", () => {
          chosen[name] = r.id;
          touched.add(name);
        })))));
  }

  async function drawMoves() {
    const others = records.filter((r) => r.id !== survivorId);
    const survivor = records.find((r) => r.id === survivorId);
    const parts = [];
    if (table === "accounts") {
      const counts = await hangingOff(others.map((r) => r.id));
      const items = HANGING.filter((table) => counts[table]).map((table) => h("li", { testid: "merge-move-count",
        dataset: { table, count: String(counts[table]) } }, h("strong", {}, String(counts[table])), ` ${T.tables[table](counts[table])}`));
      parts.push(h("p", {}, T.moves(survivor.name)),
        items.length ? h("ul", { class: "hanging" }, items) : empty(T.movesNone, "merge-moves-none"));
    }
    parts.push(h("p", { class: "hint", testid: "merge-gone", dataset: { count: String(others.length) } }, T.gone(others.length)),
      h("p", { class: "hint" }, T.unsent));
    moves.replaceChildren(...parts);
  }

  function update() {
    offline.hidden = navigator.onLine;
    confirm.disabled = !navigator.onLine || made !== null;
  }

  function draw() {
    drawSurvivors();
    drawFields();
    drawMoves();
    update();
  }

  confirm.addEventListener("click", async () => {
    if (!navigator.onLine) return update();
    confirm.disabled = true;
    status.textContent = T.working;
    const survivor = records.find((r) => r.id === survivorId);
    const merged = records.filter((r) => r.id !== survivorId);
    const fields = {};
    for (const name of differing) fields[name === "position" ? "lat" : name] = chosen[name];
    const result = await call("/api/merge", { table, survivor_id: survivorId, merged_ids: merged.map((r) => r.id), fields });
    if (!result.ok) {
      status.textContent = result.error;
      status.dataset.state = "failed";
      confirm.disabled = false;
      return;
    }
    made = { merge_id: result.data.merge_id, table, survivor_id: survivorId, survivor_name: survivor.name,
      merged_names: merged.map((r) => r.name), at: new Date().toISOString(), undone: false };
    await remember((list) => [made, ...list]);
    status.dataset.state = "merged";
    status.replaceChildren(h("p", {}, T.done(survivor.name)),
      table === "accounts" ? link(T.open, `#/account/${survivorId}`, "merge-open", "button-link") : null);
    undoButton.hidden = false;
    for (const input of el.querySelectorAll("input")) input.disabled = true;
    update();
    syncNow();
  });
  undoButton.addEventListener("click", async () => {
    undoButton.disabled = true;
    if (await undo(made, status)) undoButton.hidden = true;
    else undoButton.disabled = false;
  });
  const onNet = () => update();
  window.addEventListener("online", onNet);
  window.addEventListener("offline", onNet);

  const el = h("div", { class: "screen merge" }, heading,
    section(T.keep, "merge-keep", h("p", { class: "hint" }, T.keepHint), keepList),
    h("section", { class: "merge-values", testid: "merge-values" }, h("h2", {}, T.fields), fieldsBox),
    section(table === "accounts" ? T.whatMoves : T.whatHappens, "merge-what", moves),
    h("div", { class: "stack" }, offline, confirm, status, undoButton, back));
  draw();
  return {
    title: T.merge, el,
    leave: () => {
      window.removeEventListener("online", onNet);
      window.removeEventListener("offline", onNet);
    },
  };
}
