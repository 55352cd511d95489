// Import and export (managers and admins; SPEC section 8). Loaded when the screen opens,
// not part of the app shell: it needs the server anyway (docs/pwa.md).
//
// Import: pick a CSV or .xlsx file; "Check the file" sends it as a dry run in the
// background and shows what a real run would do (counts, the first rows as read, each
// row's errors with its row and column); "Import" sends it again for real and shows the
// job's progress, then the geocoding of accounts without a position, and offers to revert.
// The import's id stays in the address (`#/import?id=`), so its progress can be opened
// again. Export: each table as CSV, the contacts as vCard, downloaded with the bearer
// token (fetch, then a blob), never through a link that would need a cookie.

import { formatNumber, serverError, t, tn } from "../i18n.js";
import { apiFetch, errorDetail, NetworkError } from "../api.js";
import { getRecord } from "../records.js";
import { replaceQuery } from "../router.js";
import { expireSession, session, userNames } from "../session.js";
import { isManager } from "../team.js";
import { button, empty, field, h, section } from "../ui.js";

const T = {
  title: t("Import and export"),
  notManager: t("Importing is for managers and admins."),
  importTitle: t("Import a file"),
  lead: t("A CSV file (from Excel, LibreOffice or another CRM) or an .xlsx workbook. The first row names the columns."),
  table: t("Import into"),
  tables: { accounts: t("Accounts"), contacts: t("Contacts") },
  onDuplicate: t("A row that matches a record already here"),
  skip: t("Leave the record as it is"),
  update: t("Fill the record's empty fields"),
  file: t("File"),
  check: t("Check the file"),
  checking: (done, total) => t("Checking the file: {done} of {total} rows…", { done: n(done), total: n(total) }),
  checked: (total) => t("All {total} rows checked. Nothing is written yet.", { total: n(total) }),
  written: (total) => t("All {total} rows handled.", { total: n(total) }),
  stopped: t("The import stopped."),
  sending: t("Sending the file…"),
  pickFile: t("Choose a file first."),
  offline: t("Offline: importing needs a connection."),
  noAnswer: t("The server did not answer. Nothing was imported; try again."),
  previewTitle: t("What the import will do"),
  readAs: (encoding) => encoding === "xlsx" ? t("Read as an Excel workbook.")
    : t("Read as text in {encoding}.", { encoding: ENCODINGS[encoding] || encoding }),
  counts: { rows: t("Rows"), created: t("New"), updated: t("Filled in"), duplicates: t("Already here"), errors: t("With errors") },
  geocode: (count) => tn("{n} account without a position will be placed from the address.",
    "{n} accounts without a position will be placed from the address.", count),
  unknown: (cols) => t("Columns left out (not a field fieldcrm knows): {columns}.", { columns: cols.join(", ") }),
  ignored: (cols) => t("Columns the server keeps itself, left out: {columns}.", { columns: cols.join(", ") }),
  firstRows: t("First rows as read"),
  rowLabel: (row) => t("Row {row}", { row }),
  errorsTitle: (count) => tn("{n} row with errors, left out", "{n} rows with errors, left out", count),
  errorLine: (e) => (e.column ? t("Row {row}, column “{column}”: {detail}", { row: e.row, column: e.column, detail: rowError(e) })
    : t("Row {row}: {detail}", { row: e.row, detail: rowError(e) })),
  moreErrors: (count) => t("and {count} more.", { count: n(count) }),
  confirm: (count) => tn("Import {n} row", "Import {n} rows", count),
  nothing: t("Nothing to import: every row is already here or has errors."),
  another: t("Choose another file"),
  importing: (done, total) => t("Writing: {done} of {total} rows…", { done: n(done), total: n(total) }),
  resultTitle: t("This import"),
  done: (s) => t("Done: {created} new, {updated} filled in, {duplicates} already here, {errors} with errors.",
    { created: n(s.created), updated: n(s.updated), duplicates: n(s.duplicates), errors: n(s.error_count) }),
  failed: (why) => t("The import stopped: {why} What it wrote is kept; revert it to take it back.", { why }),
  geocoding: (g) => t("Placing accounts from their address: {placed} placed, {missing} not found, {pending} waiting.",
    { placed: n(g.placed), missing: n(g.not_found), pending: n(g.pending) }),
  revert: t("Revert this import"),
  revertConfirm: t("Tap again to delete what it created and empty what it filled"),
  reverting: t("Reverting…"),
  reverted: (r) => t("Reverted: {deleted} deleted, {emptied} emptied.", { deleted: n(r.deleted), emptied: n(r.emptied) }),
  kept: (count) => t("{count} kept, changed since the import:", { count: n(count) }),
  exportTitle: t("Export"),
  exportLead: t("Every record you see, as a file for a spreadsheet or another CRM. It imports back as it is."),
  exportTables: { accounts: t("Accounts"), contacts: t("Contacts"), visits: t("Visits"), notes: t("Notes"), tasks: t("Tasks"), deals: t("Deals") },
  csv: (label) => t("{table} (CSV)", { table: label }),
  vcard: t("Contacts (vCard)"),
  downloading: (name) => t("Downloading {name}…", { name }),
  downloaded: (name, size) => t("{name} downloaded ({size}).", { name, size }),
  downloadFailed: (name, why) => t("{name} could not be downloaded: {why}", { name, why }),
};

const ENCODINGS = { "utf-8": "UTF-8", cp1252: "Windows-1252", cp1250: "Windows-1250", latin_1: "ISO-8859-1",
  iso8859_15: "ISO-8859-15", mac_roman: "Mac Roman", cp850: "DOS Latin-1" };
const POLL_MS = 500;
const GEOCODING_POLL_MS = 3000;
const UPLOAD_TIMEOUT_MS = 300_000;
const SHOWN_ERRORS = 50;
const FIELD_LABELS = { name: t("Name"), status: t("Status"), phone: t("Phone"), email: t("Email"), website: t("Website"),
  street: t("Street"), city: t("City"), region: t("Region"), postal_code: t("Postcode"), country: t("Country"),
  lat: t("Latitude"), lng: t("Longitude"), owner_id: t("Owner"), account_id: t("Account"), title: t("Title") };

// A row's error: the server's sentence in English, the code's in another language.
const rowError = (e) => serverError(e.error, e.detail);

function n(value) {
  return formatNumber(Number(value || 0));
}

function kilobytes(bytes) {
  return bytes < 1024 * 1024 ? t("{size} KB", { size: formatNumber(Math.max(1, Math.round(bytes / 1024))) })
    : t("{size} MB", { size: formatNumber(bytes / 1024 / 1024, { maximumFractionDigits: 1 }) });
}

async function upload(table, file, { dryRun, onDuplicate }) {
  const query = new URLSearchParams({ background: "true", on_duplicate: onDuplicate });
  if (dryRun) query.set("dry_run", "true");
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), UPLOAD_TIMEOUT_MS);
  try {
    const response = await fetch(`/api/import/${table}?${query}`, {
      method: "POST", body: file, signal: controller.signal, cache: "no-store", credentials: "omit",
      headers: { Accept: "application/json", Authorization: `Bearer ${session().token}`,
        "Content-Type": file.type || "application/octet-stream" },
    });
    const data = await response.json().catch(() => null);
    return { status: response.status, data };
  } catch {
    throw new NetworkError(t("No connection"));
  } finally {
    clearTimeout(timer);
  }
}

async function call(path, options = {}) {
  const result = await apiFetch(path, { token: session().token, ...options });
  if (result.status === 401) await expireSession();
  return result;
}

function fileName(response, fallback) {
  const found = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return found ? found[1] : fallback;
}

async function download(path, fallback) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session().token}` },
    cache: "no-store", credentials: "omit" });
  if (response.status === 401) await expireSession();
  if (!response.ok) {
    const data = await response.json().catch(() => null);
    throw new Error(errorDetail({ data }, t("the server answered {status}.", { status: response.status })));
  }
  const blob = await response.blob();
  const name = fileName(response, fallback);
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return { name, size: blob.size };
}

function counts(status, testid) {
  const list = [["rows", status.rows], ["created", status.created], ["updated", status.updated],
    ["duplicates", status.duplicates], ["errors", status.error_count]];
  return h("dl", { class: "import-counts", testid },
    list.map(([key, value]) => h("div", { testid: "import-count", dataset: { count: key, value: String(value || 0) } },
      h("dt", {}, T.counts[key]), h("dd", {}, n(value)))));
}

async function previewRows(status) {
  const names = await userNames().catch(() => new Map());
  const items = [];
  for (const row of status.preview || []) {
    const parts = [];
    for (const [key, value] of Object.entries(row)) {
      if (key === "row" || value === null || value === "") continue;
      let shown = value;
      if (key === "owner_id") shown = names.get(value) || value;
      if (key === "account_id") shown = (await getRecord("accounts", value))?.name || value;
      parts.push(`${FIELD_LABELS[key] || key}: ${shown}`);
    }
    items.push(h("li", { class: "row", testid: "import-preview-row", dataset: { row: String(row.row) } },
      h("span", { class: "row-main" }, h("span", { class: "row-title" }, T.rowLabel(row.row)),
        h("span", { class: "row-sub" }, parts.join(" · ")))));
  }
  return items;
}

function errorList(status) {
  if (!status.error_count) return null;
  const shown = status.errors.slice(0, SHOWN_ERRORS);
  return h("div", { class: "import-errors", testid: "import-errors", dataset: { count: String(status.error_count) } },
    h("h3", {}, T.errorsTitle(status.error_count)),
    h("ul", { class: "list" }, shown.map((e) => h("li", { class: "row", testid: "import-error",
      dataset: { row: String(e.row), column: e.column || "", error: e.error } }, h("span", { class: "row-main error-text" }, T.errorLine(e))))),
    status.error_count > shown.length ? h("p", { class: "hint" }, T.moreErrors(status.error_count - shown.length)) : null);
}

export async function importScreen(_params, query) {
  const heading = h("h1", {}, T.title);
  if (!isManager()) return { title: T.title, el: h("div", { class: "screen" }, heading, empty(T.notManager, "team-not-manager")) };
  const timers = new Set();
  let left = false;
  const later = (fn, ms) => {
    const timer = setTimeout(() => { timers.delete(timer); if (!left) fn(); }, ms);
    timers.add(timer);
  };

  const table = field({ name: "table", label: T.table, type: "select", testid: "import-table",
    options: Object.entries(T.tables) });
  const onDuplicate = field({ name: "on_duplicate", label: T.onDuplicate, type: "select", testid: "import-on-duplicate",
    options: [["skip", T.skip], ["update", T.update]] });
  const fileInput = h("input", { type: "file", id: "import-file", name: "file", testid: "import-file",
    accept: ".csv,.txt,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" });
  const fileField = h("div", { class: "field" }, h("label", { for: "import-file" }, T.file), fileInput);
  const message = h("p", { class: "notice", role: "alert", testid: "import-message", hidden: true });
  const progress = h("progress", { testid: "import-progress", max: "1", value: "0", hidden: true });
  const progressText = h("p", { class: "hint", testid: "import-progress-text", "aria-live": "polite" });
  const check = h("button", { type: "submit", class: "primary", testid: "import-check" }, T.check);
  const result = h("div", { class: "stack", testid: "import-result" });
  const form = h("form", { class: "stack", testid: "import-form" }, table, onDuplicate, fileField, check);

  const say = (text) => { message.textContent = text || ""; message.hidden = !text; };
  const busy = (on) => { for (const c of form.querySelectorAll("select, input, button")) c.disabled = on; };
  const choice = () => ({ table: table.querySelector("select").value, onDuplicate: onDuplicate.querySelector("select").value,
    file: fileInput.files && fileInput.files[0] });

  function showProgress(status, words) {
    progress.hidden = false;
    progress.max = Math.max(1, status.rows);
    progress.value = status.written;
    progress.dataset.state = status.state;
    progressText.textContent = status.state === "running" ? words(status.written, status.rows)
      : status.state === "failed" ? T.stopped : status.dry_run ? T.checked(status.rows) : T.written(status.rows);
  }

  // Polls the import until its job ends; resolves with its last status, or null.
  async function follow(importId, words) {
    for (;;) {
      let answer;
      try {
        answer = await call(`/api/import/${importId}`);
      } catch {
        say(T.noAnswer);
        return null;
      }
      if (answer.status !== 200) {
        say(errorDetail(answer, T.noAnswer));
        return null;
      }
      showProgress(answer.data, words);
      if (answer.data.state !== "running" || left) return answer.data;
      await new Promise((resolve) => later(resolve, POLL_MS));
    }
  }

  async function start(dryRun) {
    const { table: into, onDuplicate: mode, file } = choice();
    if (!file) return say(T.pickFile);
    if (!navigator.onLine) return say(T.offline);
    say("");
    busy(true);
    result.replaceChildren();
    progressText.textContent = T.sending;
    let answer;
    try {
      answer = await upload(into, file, { dryRun, onDuplicate: mode });
    } catch {
      busy(false);
      progressText.textContent = "";
      return say(navigator.onLine ? T.noAnswer : T.offline);
    }
    if (answer.status === 401) await expireSession();
    if (answer.status !== 202) {
      busy(false);
      progressText.textContent = "";
      return say(errorDetail(answer, T.noAnswer));
    }
    if (!dryRun) replaceQuery("/import", new URLSearchParams({ id: answer.data.import_id }));
    const status = await follow(answer.data.import_id, dryRun ? T.checking : T.importing);
    if (!status || left) return busy(false);
    if (dryRun) await showPreview(status);
    else await showDone(status);
  }

  async function showPreview(status) {
    const writes = status.created + status.updated;
    const confirm = h("button", { type: "button", class: "primary", testid: "import-confirm", disabled: !writes },
      writes ? T.confirm(writes) : T.nothing);
    confirm.addEventListener("click", () => start(false));
    const again = button(T.another, "import-reset", () => {
      busy(false);
      fileInput.value = "";
      result.replaceChildren();
      progress.hidden = true;
      progressText.textContent = "";
      fileInput.focus();
    });
    result.replaceChildren(section(T.previewTitle, "import-preview",
      h("p", { class: "hint", testid: "import-encoding" }, T.readAs(status.encoding)),
      counts(status, "import-preview-counts"),
      status.geocode ? h("p", { class: "hint" }, T.geocode(status.geocode)) : null,
      status.unknown_columns.length ? h("p", { class: "hint", testid: "import-unknown" }, T.unknown(status.unknown_columns)) : null,
      status.ignored_columns.length ? h("p", { class: "hint" }, T.ignored(status.ignored_columns)) : null,
      status.preview.length ? [h("h3", {}, T.firstRows), h("ul", { class: "list" }, await previewRows(status))] : null,
      errorList(status),
      h("div", { class: "actions" }, confirm, again)));
    confirm.focus();
  }

  async function showDone(status) {
    busy(false);
    const geocoding = h("p", { class: "hint", testid: "import-geocoding", "aria-live": "polite" });
    const revert = h("button", { type: "button", testid: "import-revert" }, T.revert);
    const reverted = h("div", { testid: "import-reverted", role: "status", hidden: true });
    let armed = false;
    revert.addEventListener("click", async () => {
      if (!armed) {
        armed = true;
        revert.textContent = T.revertConfirm;
        revert.dataset.testid = "import-revert-confirm";
        return;
      }
      revert.disabled = true;
      revert.textContent = T.reverting;
      let answer;
      try {
        answer = await call(`/api/import/${status.import_id}`, { method: "DELETE", timeoutMs: UPLOAD_TIMEOUT_MS });
      } catch {
        answer = null;
      }
      if (!answer || answer.status !== 200) {
        revert.disabled = false;
        armed = false;
        revert.dataset.testid = "import-revert";
        revert.textContent = T.revert;
        return say(answer ? errorDetail(answer, T.noAnswer) : T.noAnswer);
      }
      showReverted(answer.data);
    });
    function showReverted(r) {
      revert.hidden = true;
      reverted.dataset.deleted = String(r.deleted);
      reverted.replaceChildren(h("div", {}, h("p", {}, T.reverted(r)),
        r.kept.length ? [h("p", {}, T.kept(r.kept.length)), h("ul", { class: "list" }, r.kept.map((k) =>
          h("li", { class: "row", testid: "import-kept", dataset: { id: k.id } },
            h("span", { class: "row-main" }, h("span", { class: "row-title" }, k.name || k.id), h("span", { class: "row-sub" }, k.reason)))))] : null));
      reverted.hidden = false;
    }
    const watchGeocoding = async () => {
      const answer = await call(`/api/import/${status.import_id}`).catch(() => null);
      if (!answer || answer.status !== 200 || left) return;
      const g = answer.data.geocoding;
      geocoding.textContent = T.geocoding(g);
      geocoding.dataset.pending = String(g.pending);
      if (g.pending > 0 && answer.data.state !== "reverted") later(watchGeocoding, GEOCODING_POLL_MS);
    };
    const words = status.state === "failed" ? T.failed(status.failure || "") : T.done(status);
    result.replaceChildren(section(T.resultTitle, "import-done",
      h("p", { testid: "import-summary", dataset: { state: status.state } }, words),
      counts(status, "import-done-counts"),
      errorList(status),
      status.geocode ? geocoding : null,
      status.state === "reverted" ? null : revert, reverted));
    if (status.state === "reverted") showReverted(status.reverted);
    if (status.geocode) watchGeocoding();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    start(true);
  });

  const exportMessage = h("p", { class: "hint", testid: "export-message", "aria-live": "polite" });
  const exportButton = (label, path, name, testid) => button(label, testid, async () => {
    exportMessage.textContent = T.downloading(name);
    try {
      const got = await download(path, name);
      exportMessage.textContent = T.downloaded(got.name, kilobytes(got.size));
    } catch (err) {
      exportMessage.textContent = T.downloadFailed(name, err instanceof TypeError ? T.offline : err.message);
    }
  });
  const exports = section(T.exportTitle, "export",
    h("p", { class: "hint" }, T.exportLead),
    h("div", { class: "actions" },
      Object.entries(T.exportTables).map(([t, label]) =>
        exportButton(T.csv(label), `/api/export/${t}.csv`, `${t}.csv`, `export-${t}`)),
      exportButton(T.vcard, "/api/export/contacts.vcf", "contacts.vcf", "export-vcard")),
    exportMessage);

  const el = h("div", { class: "screen import" }, heading,
    section(T.importTitle, "import", h("p", { class: "lead" }, T.lead), form, message, progress, progressText),
    result, exports);

  const opened = query.get("id");
  if (opened) {
    busy(true);
    follow(opened, T.importing).then((status) => {
      if (status && !left) showDone(status);
      else busy(false);
    });
  }
  return {
    title: T.title, el,
    leave: () => {
      left = true;
      for (const timer of timers) clearTimeout(timer);
    },
  };
}
