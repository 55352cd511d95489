// Unsaved drafts of visits, notes and tasks (js/drafts.js): where a rep finds the one they
// forgot, to finish it or to throw it away.

import { t, tn } from "../i18n.js";
import { accountNames } from "../components.js";
import { allDrafts, discardDraft, savedWhen } from "../drafts.js";
import { allRows } from "../records.js";
import { empty, h, uid } from "../ui.js";

// In this order wherever kinds are counted.
const NOUN = {
  visit: (n) => tn("{n} visit", "{n} visits", n),
  note: (n) => tn("{n} note", "{n} notes", n),
  task: (n) => tn("{n} task", "{n} tasks", n),
};
const ONLY = {
  visit: (n) => tn("{n} unsaved visit draft", "{n} unsaved visit drafts", n),
  note: (n) => tn("{n} unsaved note draft", "{n} unsaved note drafts", n),
  task: (n) => tn("{n} unsaved task draft", "{n} unsaved task drafts", n),
};

// "1 unsaved visit draft", "3 unsaved drafts: 2 visits, 1 note".
export function draftsSummary(drafts) {
  const counts = new Map();
  for (const kind of Object.keys(NOUN)) {
    const n = drafts.filter((d) => d.kind === kind).length;
    if (n) counts.set(kind, n);
  }
  if (counts.size === 1) {
    const [[kind, n]] = counts;
    return ONLY[kind](n);
  }
  const parts = [...counts].map(([kind, n]) => NOUN[kind](n));
  return t("{count} unsaved drafts: {parts}", { count: drafts.length, parts: parts.join(", ") });
}

// The Today screen's way in: nothing when there is no draft.
export function draftsLine(drafts) {
  if (!drafts.length) return null;
  return h("p", { class: "notice" },
    h("a", { href: "#/drafts", testid: "today-drafts", dataset: { count: String(drafts.length) } },
      draftsSummary(drafts)));
}

function label(draft) {
  if (draft.kind === "visit") return t("Visit draft");
  if (draft.kind === "note") return t("Note draft");
  return draft.record_id ? t("Task edit draft") : t("New task draft");
}

function draftRow(draft, names) {
  const [titleId, subId] = [uid("draft"), uid("draft")];
  let armed = false;
  // Which draft the button discards, for a screen reader going from button to button.
  const discard = h("button", { type: "button", class: "small danger", testid: "draft-row-discard",
    "aria-describedby": `${titleId} ${subId}` }, t("Discard"));
  discard.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      discard.textContent = t("Tap again to discard");
      return;
    }
    discard.disabled = true;
    await discardDraft(draft.key); // the list draws itself again
  });
  // Titled by what the rep remembers: the customer; a task for no account by its title.
  const title = draft.account_id
    ? names.get(draft.account_id) || t("An account no longer on this phone")
    : draft.preview || t("A task");
  const preview = draft.account_id ? draft.preview : null;
  return h("li", { class: "row draft-row", testid: "draft-row", dataset: { id: draft.key, kind: draft.kind } },
    h("a", { href: draft.route, class: "row-main", testid: "draft-open" },
      h("span", { class: "row-title", testid: "draft-title", id: titleId }, title),
      h("span", { class: "row-sub", id: subId }, `${label(draft)} · ${t("saved at")} `,
        h("span", { class: "nowrap" }, savedWhen(draft.saved_at))),
      preview ? h("span", { class: "row-sub clamp", testid: "draft-preview" }, preview) : null),
    h("div", { class: "row-actions" }, discard));
}

export async function draftsScreen() {
  const [drafts, accounts] = await Promise.all([allDrafts(), allRows("accounts")]);
  const names = accountNames(accounts);
  const el = h("div", { class: "screen" },
    h("h1", {}, t("Unsaved drafts")),
    h("p", { class: "count", testid: "drafts-count", dataset: { count: String(drafts.length) } },
      drafts.length ? t("{summary}. Open one to finish and save it.", { summary: draftsSummary(drafts) }) : ""),
    drafts.length
      ? h("ul", { class: "list", testid: "drafts-list" }, drafts.map((d) => draftRow(d, names)))
      : empty(t("No unsaved drafts. Everything you started is saved."), "drafts-empty"));
  return { title: t("Unsaved drafts"), el, live: true };
}
