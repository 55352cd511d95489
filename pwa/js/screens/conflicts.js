// The conflicts inbox: every value that lost a merge, until someone decides. "Keep mine"
// writes the lost value back as a new upsert; "Keep theirs" only marks the conflict
// resolved (the only field a client may write on a conflict). "Keep mine" replaces a
// colleague's value: the card says whose, and asks a second tap; the write goes with
// base_seq 0 (written without having seen the value it replaces), so the server keeps the
// colleague's value in a new conflicts row naming them (SPEC 4 rule 5b): they are told.

import { t, tn } from "../i18n.js";
import { allRows, getRecord, saveWrites } from "../records.js";
import { me, userNames } from "../session.js";
import { LABELS, empty, formatDateTime, h, link, toast } from "../ui.js";

const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/;

export function conflictTable(c) {
  return c.table || c.record_table;
}

export function formatValue(value) {
  if (value === null || value === undefined || value === "") return "(empty)";
  if (value === true) return t("Yes");
  if (value === false) return t("No");
  if (typeof value === "object") return JSON.stringify(value);
  if (typeof value === "string" && ISO_DATETIME.test(value)) return formatDateTime(value);
  return String(value);
}

function clockTime(hlc, fallback) {
  return Array.isArray(hlc) && hlc[0] ? new Date(hlc[0]).toISOString() : fallback;
}

function parseClock(value) {
  if (Array.isArray(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return null;
  }
}

async function keepMine(c, replaced) {
  await saveWrites([
    {
      table: conflictTable(c), id: c.record_id, op: "upsert", fields: { [c.field]: c.lost_value },
      base_seq: 0,
    },
    { table: "conflicts", id: c.id, op: "upsert", fields: { resolved: true } },
  ]);
  toast(replaced ? t("Written back over {name}'s value; they will see a conflict about it.", { name: replaced })
    : t("The lost value is written back"));
}

async function keepTheirs(c) {
  await saveWrites([{ table: "conflicts", id: c.id, op: "upsert", fields: { resolved: true } }]);
  toast(t("Conflict resolved"));
}

// Conflicts whose "Keep mine" waits for its second tap (kept across redraws).
const armed = new Set();

async function recordLink(c) {
  const table = conflictTable(c);
  if (table === "accounts") return `#/account/${c.record_id}`;
  if (table === "visits") return `#/visit/${c.record_id}`;
  if (c.account_id) return `#/account/${c.account_id}`;
  const row = await getRecord(table, c.record_id);
  if (row && row.account_id) return `#/account/${row.account_id}`;
  return table === "tasks" ? "#/tasks" : null;
}

async function conflictRow(c, names) {
  const userId = me() && me().id;
  const who = (id) => (id === userId ? t("you") : names.get(id) || t("someone"));
  const mineLost = c.lost_by === userId;
  const href = await recordLink(c);
  const table = conflictTable(c);
  // Name the account the conflict is about (the server sends account_id), not just a table.
  const accountId = c.account_id || (table === "accounts" ? c.record_id : null);
  const account = accountId ? await getRecord("accounts", accountId) : null;
  const about = `${LABELS.table[table] || table} · ${(table === "contacts" && c.field === "title" ? t("Job title") : LABELS.field[c.field]) || c.field}`;
  const title = account && account.name ? `${account.name} — ${about}` : about;
  const lostAt = clockTime(parseClock(c.lost_hlc), c.created_at);
  const keptByOther = !!c.kept_by && c.kept_by !== userId;
  const confirm = h("p", { class: "notice", testid: "conflict-keep-mine-confirm", hidden: !armed.has(c.id) },
    c.kept_by === userId
      ? t("This replaces your value “{kept}” with “{lost}”.", { kept: formatValue(c.kept_value), lost: formatValue(c.lost_value) })
      : t("This replaces {name}'s value “{kept}” with “{lost}”. {name} will see a conflict about it.",
        { name: who(c.kept_by), kept: formatValue(c.kept_value), lost: formatValue(c.lost_value) }));
  const keptAt = clockTime(parseClock(c.kept_hlc), c.created_at);
  return h("li", { class: "card conflict", testid: "conflict-row", dataset: { id: c.id } },
    h("p", { class: "row-title" },
      href ? link(title, href, "conflict-record", "row-link") : h("span", { testid: "conflict-record" }, title)),
    h("span", { hidden: true, testid: "conflict-table" }, table),
    h("span", { hidden: true, testid: "conflict-field" }, c.field),
    h("dl", { class: "details" },
      h("dt", {}, t("Kept")),
      h("dd", {}, h("strong", { testid: "conflict-kept" }, formatValue(c.kept_value)),
        h("span", { class: "row-sub", testid: "conflict-kept-by" }, ` ${t("by {name}, {when}", { name: who(c.kept_by), when: formatDateTime(keptAt) })}`)),
      h("dt", {}, t("Lost")),
      h("dd", {}, h("strong", { testid: "conflict-lost" }, formatValue(c.lost_value)),
        h("span", { class: "row-sub", testid: "conflict-lost-by" }, ` ${t("by {name}, {when}", { name: who(c.lost_by), when: formatDateTime(lostAt) })}`))),
    h("p", { class: "row-sub", testid: "conflict-when" }, t("Found {when}", { when: formatDateTime(c.created_at) })),
    confirm,
    h("div", { class: "actions" },
      h("button", { type: "button", testid: "conflict-keep-mine", onclick: (event) => {
        // Overwriting a colleague's value: say whose and what, and ask once more.
        if (keptByOther && !armed.has(c.id)) {
          armed.add(c.id);
          confirm.hidden = false;
          event.target.textContent = t("Tap again to write it back");
          return;
        }
        armed.delete(c.id);
        keepMine(c, keptByOther ? who(c.kept_by) : null);
      } }, armed.has(c.id) ? t("Tap again to write it back") : mineLost ? t("Keep mine") : t("Restore lost value")),
      h("button", { type: "button", testid: "conflict-keep-theirs", onclick: () => keepTheirs(c) },
        mineLost ? t("Keep theirs") : t("Keep current value"))));
}

export async function unresolvedConflicts() {
  return (await allRows("conflicts")).filter((c) => !c.resolved);
}

export async function conflictsScreen() {
  const [conflicts, names] = await Promise.all([unresolvedConflicts(), userNames()]);
  conflicts.sort((a, b) => String(b.created_at || "").localeCompare(String(a.created_at || "")));
  const rows = await Promise.all(conflicts.map((c) => conflictRow(c, names)));
  const el = h("div", { class: "screen" },
    h("h1", {}, t("Conflicts")),
    h("p", { class: "hint" }, t("When your edit and a colleague's touched the same field, the later one was kept. Nothing is lost: decide here.")),
    h("p", { class: "count", testid: "conflict-count", dataset: { count: String(conflicts.length) } },
      tn("{n} unresolved", "{n} unresolved", conflicts.length)),
    rows.length ? h("ul", { class: "list cards" }, rows) : empty(t("No conflicts. All clear."), "conflicts-empty"));
  return { title: t("Conflicts"), el, live: true };
}
