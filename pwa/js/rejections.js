// Writes the server refused (SPEC 4 rule 12), as one list. Two sources, one write shown
// once: the server's `rejections` rows (synced to the writer, their team's managers and
// admins), and the copy this phone keeps in meta "rejected" from the moment a result says
// "rejected" until the server's row for that write (same client_id and mid) has arrived.
// A write the server keeps no row of (invalid_hlc, a write to a rejection) stays in the
// phone's copy until its user dismisses it: nothing is dropped before it can be read whole.

import { read } from "./db.js";

// The server keeps every refused write but these (rule 12).
export function keptByServer(entry) {
  const code = entry.error && entry.error.error;
  return code !== "invalid_hlc" && entry.table !== "rejections";
}

function fromRow(row) {
  return {
    key: row.id,
    source: "server",
    id: row.id,
    table: row.table,
    record_id: row.record_id,
    op: row.op,
    fields: row.fields && typeof row.fields === "object" ? row.fields : {},
    error: row.error || "rejected",
    detail: row.detail || "",
    user_id: row.user_id || null,
    client_id: row.client_id || null,
    mid: row.mid,
    account_id: row.account_id || (row._about && row._about.account_id) || null,
    resolved: !!row.resolved,
    refused_at: row.created_at ? Date.parse(row.created_at) : null,
    written_at: row._about && row._about.written_at ? row._about.written_at : null,
    about: row._about || {},
    // resolved here, not sent yet (`_base: true`: the row is the server's, nothing pending)
    pending: !!row._base && row._base !== true && row._base.resolved !== row.resolved,
  };
}

function fromLocal(entry, clientId, userId) {
  const about = { ...(entry.about || {}) };
  if (entry.fixed_at) about.fixed_at = entry.fixed_at;
  if (Array.isArray(entry.hlc)) about.written_at = entry.hlc[0];
  return {
    key: `phone-${entry.mid}`,
    source: "phone",
    id: null,
    table: entry.table,
    record_id: entry.id,
    op: entry.op,
    fields: entry.fields || {},
    error: (entry.error && entry.error.error) || "rejected",
    detail: (entry.error && entry.error.detail) || "",
    user_id: userId,
    client_id: clientId,
    mid: entry.mid,
    // A copy kept by an older version of the app has no `about`.
    account_id: about.account_id || (entry.fields && entry.fields.account_id) ||
      (entry.table === "accounts" ? entry.id : null),
    resolved: false,
    refused_at: entry.at || null,
    written_at: about.written_at || null,
    about,
    kept_by_server: keptByServer(entry),
    pending: false,
  };
}

// Every refused write this phone knows of, newest first: the server's rows, then the
// phone's copies the server's rows have not replaced yet.
export async function listRejections() {
  const [rows, local, clientId, user] = await read(["rejections", "meta"], (s) =>
    Promise.all([
      s.rejections.getAll(),
      s.meta.get("rejected"),
      s.meta.get("client_id"),
      s.meta.get("user"),
    ]),
  );
  const items = rows.filter((r) => !r._deleted).map(fromRow);
  const onServer = new Set(items.map((i) => `${i.client_id}/${i.mid}`));
  for (const entry of local || []) {
    if (!onServer.has(`${clientId}/${entry.mid}`)) {
      items.push(fromLocal(entry, clientId, user ? user.id : null));
    }
  }
  const when = (i) => i.refused_at || i.written_at || 0;
  return items.sort((a, b) => when(b) - when(a));
}

// What the header counts: refused writes nobody has marked resolved.
export function countUnresolved(rows, local, clientId) {
  const open = (rows || []).filter((r) => !r._deleted && !r.resolved);
  const onServer = new Set((rows || []).map((r) => `${r.client_id}/${r.mid}`));
  const waiting = (local || []).filter((e) => !onServer.has(`${clientId}/${e.mid}`));
  return open.length + waiting.length;
}

export async function findRejection(key) {
  return (await listRejections()).find((item) => item.key === key) || null;
}

// What marks a refused write resolved once it is fixed and sent again, in the same
// transaction as the new write (records.saveWrites): the server's row gets
// `resolved: true` through the outbox; a copy only this phone holds goes (or, when the
// server's row is still to come, is marked as sent again).
export function resolution(item) {
  if (!item) return { writes: [], rejected: [] };
  if (item.source === "server") {
    return {
      writes: [{ table: "rejections", id: item.id, op: "upsert", fields: { resolved: true } }],
      rejected: [],
    };
  }
  return { writes: [], rejected: [item.mid] };
}
