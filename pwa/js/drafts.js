// Drafts of the visit, note and task forms: what the rep typed stays in the `drafts` store
// until the record is saved (records.saveWrites deletes the draft in the record's own
// transaction) or the draft is discarded, so another screen, a reload or the app being
// killed loses nothing. A form's draft is written DRAFT_DELAY_MS after the last edit, at
// once when the page is hidden or goes away, and when the route changes.
//
// A draft: {key, kind: "visit" | "note" | "task", route, account_id, record_id, values,
// preview, saved_at (ms)}. `key` is the kind and the record's id, or for a new record the
// account (and visit) it is for: "task/ID", "visit/new/ACCOUNT", "note/new/ACCOUNT/VISIT",
// "task/new/-" (a task for no account); a form fixing a refused write (js/rejections.js)
// keeps its own, "visit/fix/KEY". `values` is the form's own business.

import { t } from "./i18n.js";
import { deleteNow, putNow, read } from "./db.js";
import { emit } from "./events.js";
import { navigate } from "./router.js";
import { announce, formatDateTime, formatTime, h, toast } from "./ui.js";

export const DRAFT_DELAY_MS = 400;

export function draftKey(kind, { recordId = null, accountId = null, visitId = null, fix = null } = {}) {
  if (fix) return `${kind}/fix/${fix}`;
  if (recordId) return `${kind}/${recordId}`;
  return [kind, "new", accountId || "-", ...(visitId ? [visitId] : [])].join("/");
}

export function loadDraft(key) {
  return read(["drafts"], (s) => s.drafts.get(key));
}

// Newest first.
export async function allDrafts() {
  const drafts = await read(["drafts"], (s) => s.drafts.getAll());
  return drafts.sort((a, b) => b.saved_at - a.saved_at);
}

export function draftCount() {
  return read(["drafts"], (s) => s.drafts.count());
}

export async function discardDraft(key) {
  await deleteNow("drafts", key);
  emit("data", { drafts: true });
}

// "10:42" today, the date too on another day.
export function savedWhen(ms) {
  const d = new Date(ms);
  return d.toDateString() === new Date().toDateString()
    ? formatTime(ms)
    : formatDateTime(d.toISOString());
}

// Keeps one form's draft. `collect()` answers the form's values, or null when it holds
// nothing worth keeping; `preview(values)` one line for the drafts list. The form calls
// `changed()` on every edit (`{now: true}` for what is costly to redo, like a check-in),
// `stop()` just before it saves the record; the router calls `leave()` on a route change.
// `status` is a line for the form saying when the draft was last kept.
export function draftKeeper({ key, kind, accountId = null, recordId = null, collect, preview, restored = null }) {
  const route = location.hash;
  const status = h("p", { class: "hint draft-status", testid: "draft-status", dataset: { state: "none" } });
  let timer = null;
  let dirty = false;
  let stopped = false;

  function show(state, savedAt) {
    status.dataset.state = state;
    if (savedAt) status.textContent = t("Draft kept on this phone at {time}.", { time: savedWhen(savedAt) });
    else if (state === "none") status.textContent = "";
  }
  if (restored) show("saved", restored.saved_at);

  function flush() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stopped || !dirty) return;
    dirty = false;
    const values = collect();
    const savedAt = Date.now();
    const writing = values
      ? putNow("drafts", {
          key, kind, route, account_id: accountId, record_id: recordId, values,
          preview: preview(values), saved_at: savedAt,
        }).then(() => show("saved", savedAt))
      : deleteNow("drafts", key).then(() => show("none"));
    writing.catch((err) => console.error("fieldcrm: the draft was not kept", err));
  }

  function changed({ now = false } = {}) {
    if (stopped) return;
    dirty = true;
    status.dataset.state = "pending";
    if (timer) clearTimeout(timer);
    timer = now ? null : setTimeout(flush, DRAFT_DELAY_MS);
    if (now) flush();
  }

  const onVisibility = () => {
    if (document.visibilityState === "hidden") flush();
  };
  document.addEventListener("visibilitychange", onVisibility);
  window.addEventListener("pagehide", flush);

  function stop() {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
    document.removeEventListener("visibilitychange", onVisibility);
    window.removeEventListener("pagehide", flush);
  }

  function leave() {
    flush();
    stop();
  }

  return { changed, flush, stop, leave, status, route };
}

// Shown above a form that opened with its draft `draft`, kept by `keeper`: when it was
// kept, and a Discard button that asks once more (a second tap, as deletes do), then
// drops the draft and draws the form empty.
export function draftNotice(draft, keeper) {
  const when = savedWhen(draft.saved_at);
  let armed = false;
  const discard = h("button", { type: "button", class: "small danger", testid: "draft-discard" }, t("Discard draft"));
  discard.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      discard.textContent = t("Tap again to discard");
      return;
    }
    discard.disabled = true;
    keeper.stop();
    await discardDraft(draft.key);
    toast(t("Draft discarded"));
    navigate(keeper.route);
  });
  announce(t("Draft restored, saved at {time}.", { time: when }));
  return h("div", { class: "notice draft-notice", testid: "draft-notice", dataset: { savedAt: String(draft.saved_at) } },
    h("p", {}, h("strong", {}, t("Draft restored")), " ", h("span", { testid: "draft-saved-at" }, t("Saved at {time}.", { time: when }))),
    discard);
}
