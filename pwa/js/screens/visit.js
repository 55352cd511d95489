// Log a visit (check-in, outcome, summary, optional follow-up task) and see one visit.
// Everything is saved on the phone first; the server checks the position when it arrives.

import { formatNumber, t } from "../i18n.js";
import { authorName, verificationBadge } from "../components.js";
import { draftKey, draftKeeper, draftNotice, loadDraft } from "../drafts.js";
import { getRecord, newId, pendingKeys, rowsOfAccount, saveWrites } from "../records.js";
import { findRejection, resolution } from "../rejections.js";
import { navigate } from "../router.js";
import { me, userNames } from "../session.js";
import {
  LABELS, empty, field, formatDateTime, formatTime, fromLocalInput, h, link, nowIso, options, section, toast,
} from "../ui.js";
import { isManager } from "../team.js";
import { fixNotice } from "./fix-notice.js";

const PLANNED_VISIT_AHEAD_MS = 24 * 3600 * 1000; // as the server's rule (server/core/rules.py)

const GEO_TIMEOUT_MS = 20_000;

// A fresh fix: half a minute ago, driving up, the rep was streets away from the door, and the
// server would find the visit out of range.
function locate() {
  return new Promise((resolve, reject) => {
    if (!("geolocation" in navigator)) {
      reject(new Error(t("This phone cannot share its location.")));
      return;
    }
    navigator.geolocation.getCurrentPosition(resolve, reject, {
      enableHighAccuracy: true,
      timeout: GEO_TIMEOUT_MS,
      maximumAge: 0,
    });
  });
}

function geoError(err) {
  if (err && err.code === 1) return t("Location permission denied. The visit is saved without a position.");
  if (err && err.code === 3) return t("No GPS fix in time. Try again outdoors, or save without a position.");
  return (err && err.message) || t("Location unavailable.");
}

export async function newVisitScreen(_params, query) {
  const accountId = query.get("account");
  const account = accountId ? await getRecord("accounts", accountId) : null;
  if (!account) {
    return { title: t("Log a visit"), el: h("div", { class: "screen" }, h("h1", {}, t("Log a visit")),
      empty(t("Open an account first, then log the visit from there."), "visit-no-account"),
      link(t("Accounts"), "#/accounts", "visit-pick-account", "button-link")) };
  }
  // "Fix and send again" (Rejected screen): the refused visit fills the form, as a new visit.
  const fix = query.get("fix") ? await findRejection(query.get("fix")) : null;
  const key = draftKey("visit", { accountId: account.id, fix: fix ? fix.key : null });
  const draft = await loadDraft(key);
  let startedAt = nowIso();
  let endedAt = null;
  let position = null;
  if (fix) {
    const f = fix.fields;
    if (typeof f.started_at === "string") startedAt = f.started_at;
    if (typeof f.ended_at === "string") endedAt = f.ended_at;
    if (typeof f.lat === "number" && typeof f.lng === "number") {
      position = { lat: f.lat, lng: f.lng, accuracy_m: typeof f.accuracy_m === "number" ? f.accuracy_m : 0 };
    }
  }

  const positionText = h("p", { class: "hint", testid: "visit-position", "aria-live": "polite",
    dataset: { state: "none" } }, t("Not checked in yet. Tap “Check in” at the customer's door."));
  const checkin = h("button", { type: "button", class: "primary", testid: "visit-checkin" }, t("Check in"));
  const showPosition = () => {
    positionText.dataset.state = "located";
    positionText.textContent =
      t("Checked in at {time}, position within {metres} m.", { time: formatTime(Date.parse(startedAt)),
        metres: formatNumber(Math.round(position.accuracy_m)) });
    checkin.textContent = t("Check in again");
  };
  checkin.addEventListener("click", async () => {
    checkin.disabled = true;
    positionText.dataset.state = "locating";
    positionText.textContent = t("Finding your position…");
    startedAt = nowIso();
    try {
      const pos = await locate();
      position = {
        lat: pos.coords.latitude,
        lng: pos.coords.longitude,
        accuracy_m: pos.coords.accuracy,
      };
      showPosition();
    } catch (err) {
      positionText.dataset.state = "error";
      positionText.textContent = geoError(err);
    } finally {
      checkin.disabled = false;
      keeper.changed({ now: true }); // a check-in is the one thing the rep cannot type again
    }
  });

  const outcome = field({ name: "outcome", label: t("Outcome"), type: "select", testid: "visit-outcome",
    options: options(LABELS.outcome, { blank: t("Choose…") }) });
  const summary = field({ name: "summary", label: t("Summary"), type: "textarea", testid: "visit-summary",
    maxlength: 20000, rows: 5 });
  const fuTitle = field({ name: "followup_title", label: t("Follow-up task"), testid: "followup-title",
    maxlength: 200, hint: t("Leave empty for no follow-up.") });
  const fuDue = field({ name: "followup_due_at", label: t("Due"), type: "datetime-local", testid: "followup-due-at" });
  const fuRemind = field({ name: "followup_remind_at", label: t("Remind me at"), type: "datetime-local",
    testid: "followup-remind-at" });
  const error = h("p", { class: "error", role: "alert", testid: "visit-error", hidden: true });
  const save = h("button", { type: "submit", class: "primary", testid: "visit-save" }, t("Save visit"));

  // The draft: every control as typed, the check-in and when the visit started.
  const controls = {};
  for (const block of [outcome, summary, fuTitle, fuDue, fuRemind]) {
    const control = block.querySelector("input, select, textarea");
    controls[control.name] = control;
  }
  if (fix && !draft) {
    if (fix.fields.outcome) controls.outcome.value = fix.fields.outcome;
    if (fix.fields.summary) controls.summary.value = fix.fields.summary;
    if (position) showPosition();
  }
  if (draft) {
    for (const [name, value] of Object.entries(draft.values.fields)) {
      if (controls[name]) controls[name].value = value;
    }
    startedAt = draft.values.started_at;
    position = draft.values.position;
    if (position) showPosition();
  }
  const keeper = draftKeeper({
    key, kind: "visit", accountId: account.id, restored: draft,
    collect: () => {
      const fields = {};
      for (const [name, control] of Object.entries(controls)) fields[name] = control.value;
      const typed = Object.values(fields).some((v) => v.trim() !== "");
      return typed || position ? { fields, started_at: startedAt, position } : null;
    },
    preview: (values) =>
      values.fields.summary.trim() || LABELS.outcome[values.fields.outcome] ||
      (values.position ? t("Checked in") : values.fields.followup_title),
  });

  const attach = await import("../attachments.js");
  const captures = attach.held();
  const form = h("form", { class: "stack", testid: "visit-form", novalidate: true },
    h("fieldset", {}, h("legend", {}, t("Check-in")), checkin, positionText),
    outcome, summary, captures.el,
    h("fieldset", { testid: "followup" }, h("legend", {}, t("Follow-up (optional)")), fuTitle, fuDue, fuRemind),
    error,
    h("div", { class: "actions" }, save,
      link(t("Cancel"), `#/account/${account.id}`, "visit-cancel", "button-link")),
    keeper.status);
  form.addEventListener("input", () => keeper.changed());
  form.addEventListener("change", () => keeper.changed());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = (block) => block.querySelector("input, select, textarea").value.trim();
    const followTitle = value(fuTitle);
    if (!followTitle && (value(fuDue) || value(fuRemind))) {
      error.textContent = t("Give the follow-up task a title, or clear its dates.");
      error.hidden = false;
      fuTitle.querySelector("input").focus();
      return;
    }
    const visitId = newId();
    const visit = { account_id: account.id, started_at: startedAt, ended_at: endedAt || nowIso() };
    if (position) Object.assign(visit, position);
    if (value(outcome)) visit.outcome = value(outcome);
    if (value(summary)) visit.summary = value(summary);
    const writes = [{ table: "visits", id: visitId, op: "upsert", fields: visit }];
    if (followTitle) {
      const task = { title: followTitle, account_id: account.id, done: false };
      if (me()) task.assignee_id = me().id;
      const due = fromLocalInput(value(fuDue));
      const remind = fromLocalInput(value(fuRemind));
      if (due) task.due_at = due;
      if (remind) task.remind_at = remind;
      writes.push({ table: "tasks", id: newId(), op: "upsert", fields: task });
    }
    // The visits I planned here, due by a day after this one began, are made: the
    // server marks them done too (SPEC section 14); this shows it at once, offline.
    const plannedBy = new Date(startedAt).getTime() + PLANNED_VISIT_AHEAD_MS;
    for (const task of await rowsOfAccount("tasks", account.id)) {
      if (task.kind !== "visit" || task.done || !task.due_at || !me()) continue;
      if (task.assignee_id !== me().id || new Date(task.due_at).getTime() > plannedBy) continue;
      writes.push({ table: "tasks", id: task.id, op: "upsert", fields: { done: true } });
    }
    const kept = attach.attachmentWrites(captures.items, { account_id: account.id, visit_id: visitId },
      position && { lat: position.lat, lng: position.lng });
    save.disabled = true;
    keeper.stop();
    const resolved = resolution(fix);
    await saveWrites([...writes, ...kept.writes, ...resolved.writes],
      { drafts: [key], rejected: resolved.rejected, blobs: kept.blobs });
    toast(followTitle ? t("Visit and follow-up saved") : t("Visit saved"));
    navigate(`#/visit/${visitId}`);
  });

  const el = h("div", { class: "screen" },
    h("h1", {}, t("Log a visit")),
    h("p", { class: "lead", testid: "visit-account" }, account.name),
    fix ? fixNotice(fix) : null,
    draft ? draftNotice(draft, keeper) : null,
    form);
  return { title: t("Log a visit"), el, leave: keeper.leave };
}

// A visit or a note is changed by its author (a record not synced yet is this phone's
// user's), a manager of its team or an admin (SPEC section 2; the server checks again).
export function mayChange(authorId) {
  const user = me();
  return !!user && (!authorId || authorId === user.id || isManager());
}

// How long a visit lasted, from check-in to check-out: "23 min", "1 h 05".
function duration(visit) {
  if (!visit.started_at || !visit.ended_at) return "";
  const minutes = Math.round((new Date(visit.ended_at) - new Date(visit.started_at)) / 60_000);
  if (!(minutes >= 1)) return "";
  return minutes < 60 ? t("{minutes} min", { minutes }) : t("{hours} h {minutes}", { hours: Math.floor(minutes / 60), minutes: String(minutes % 60).padStart(2, "0") });
}

export async function visitScreen({ id }) {
  const visit = await getRecord("visits", id);
  if (!visit) {
    return { title: t("Visit"), live: true, el: h("div", { class: "screen" }, h("h1", {}, t("Visit not found")),
      empty(t("This visit is not on this phone."), "visit-missing")) };
  }
  const [account, pending, notes, names, files, attach] = await Promise.all([
    getRecord("accounts", visit.account_id),
    pendingKeys(),
    rowsOfAccount("notes", visit.account_id),
    userNames(),
    rowsOfAccount("attachments", visit.account_id),
    import("../attachments.js"),
  ]);
  const visitNotes = notes.filter((n) => n.visit_id === id);
  const visitFiles = files.filter((f) => f.visit_id === id);
  // A capture on a saved visit is saved at once (the screen redraws with it).
  const add = async (it) => {
    const kept = attach.attachmentWrites([it], { account_id: visit.account_id, visit_id: id });
    await saveWrites(kept.writes, { blobs: kept.blobs });
    toast(t("Saved on the visit"));
  };
  const hasPosition = visit.lat !== null && visit.lat !== undefined;
  const el = h("div", { class: "screen", testid: "visit-screen", dataset: { id } },
    h("h1", {}, t("Visit")),
    account ? h("p", { class: "lead" }, link(account.name, `#/account/${account.id}`, "visit-account-link", "row-link")) : null,
    h("p", {}, verificationBadge(visit, pending),
      visit.distance_m !== null && visit.distance_m !== undefined
        ? h("span", { class: "hint", testid: "visit-distance" }, ` ${t("{metres} m from the account", { metres: formatNumber(Math.round(visit.distance_m)) })}`)
        : null),
    section(t("Details"), "visit-details",
      h("dl", { class: "details" },
        h("dt", {}, t("By")), h("dd", { testid: "visit-author" }, authorName(names, visit.user_id)),
        h("dt", {}, t("Started")), h("dd", { testid: "visit-started" }, formatDateTime(visit.started_at)),
        visit.ended_at ? [h("dt", {}, t("Ended")), h("dd", { testid: "visit-ended" }, formatDateTime(visit.ended_at))] : null,
        duration(visit) ? [h("dt", {}, t("Duration")), h("dd", { testid: "visit-duration" }, duration(visit))] : null,
        h("dt", {}, t("Outcome")), h("dd", { testid: "visit-outcome-text" },
          LABELS.outcome[visit.outcome] || visit.outcome || "—"),
        h("dt", {}, t("Position")), h("dd", { testid: "visit-position-text" }, hasPosition
          ? `${visit.lat.toFixed(5)}, ${visit.lng.toFixed(5)} (±${formatNumber(Math.round(visit.accuracy_m || 0))} m)`
          : t("Not recorded"))),
      visit.summary ? h("p", { class: "note-body", testid: "visit-summary-text" }, visit.summary) : null,
      mayChange(visit.user_id) ? link(t("Edit visit"), `#/visit/${id}/edit`, "visit-edit", "button-link") : null),
    section(t("Notes ({count})", { count: visitNotes.length }), "visit-notes",
      visitNotes.length
        ? h("ul", { class: "list" }, visitNotes.map((n) =>
            h("li", { class: "row note", testid: "note-row", dataset: { id: n.id } },
              h("div", { class: "row-main" },
                h("p", { class: "note-body", testid: "note-text" }, n.body),
                h("span", { class: "row-sub", testid: "note-author" }, authorName(names, n.author_id))),
              mayChange(n.author_id) ? link(t("Edit"), `#/note/${n.id}/edit`, "note-edit", "button-link small") : null)))
        : empty(t("No notes on this visit."), "visit-notes-empty"),
      link(t("Add a note"), `#/note/new?account=${visit.account_id}&visit=${id}`, "visit-add-note", "button-link")),
    section(t("Photos and voice notes ({count})", { count: visitFiles.length }), "visit-attachments",
      attach.attachmentList(visitFiles), attach.captureButtons(add)),
  );
  return { title: t("Visit"), el, live: true };
}
