// Reassign accounts (managers and admins): the accounts chosen on the accounts list (some,
// or all in its filter: `?all=1&q=&status=`) or on an account (`?ids=ID,ID`) go to another
// user of the team. The preview counts what hangs off them on this phone; confirming calls
// POST /api/accounts/{id}/reassign for each, online only, with progress and what failed.

import { t, tn } from "../i18n.js";
import { allRows } from "../records.js";
import { me, refreshUsers, teamUsers, userNames } from "../session.js";
import { syncNow } from "../sync.js";
import { HANGING, hangingOff, isManager, reassign } from "../team.js";
import { empty, field, h, link, section } from "../ui.js";
import { matchAccounts } from "../account-index.js";

const ROLES = { rep: t("Sales rep"), manager: t("Manager"), admin: t("Administrator") };

const T = {
  title: t("Reassign accounts"),
  notManager: t("Only a manager reassigns accounts."),
  none: t("No accounts chosen. Select some on the accounts list."),
  choose: t("Choose accounts"),
  count: (n) => tn("{n} account", "{n} accounts", n),
  more: (n) => t("and {n} more", { n }),
  to: t("Give them to"),
  pick: t("Choose someone"),
  hanging: t("With them go, as counted on this phone:"),
  tables: {
    contacts: (n) => tn("contact", "contacts", n), visits: (n) => tn("visit", "visits", n),
    notes: (n) => tn("note", "notes", n), tasks: (n) => tn("task", "tasks", n), deals: (n) => tn("deal", "deals", n),
  },
  owner: (name) => t("Now {name}'s", { name }),
  noOwner: t("No owner"),
  tasksKeep: t("Tasks keep whom they are assigned to."),
  unsent: t("Work reps have not sent yet (visits, notes, edits made on their phones before this change) follows the accounts when their phones sync: nothing is lost."),
  preview: (n, who) => tn("{n} account will go to {who}.", "{n} accounts will go to {who}.", n, { who }),
  already: (n, who) => tn("{n} already belongs to {who} and stays as it is.", "{n} already belong to {who} and stay as they are.", n, { who }),
  confirm: (n) => tn("Reassign {n} account", "Reassign {n} accounts", n),
  offline: t("Offline: reassigning needs a connection. Nothing has changed."),
  progress: (done, total) => t("{done} of {total} done", { done, total }),
  summary: (moved, failed) => (failed
    ? tn("{n} account reassigned, {failed} failed:", "{n} accounts reassigned, {failed} failed:", moved, { failed })
    : tn("{n} account reassigned.", "{n} accounts reassigned.", moved)),
  back: t("Back to accounts"),
};

const SHOWN = 8;

async function chosen(query) {
  const accounts = await allRows("accounts");
  if (query.get("all") === "1") return matchAccounts(query.get("q") || "", query.get("status") || "");
  const ids = new Set((query.get("ids") || "").split(",").filter(Boolean));
  return accounts.filter((a) => ids.has(a.id)).sort((a, b) => String(a.name).localeCompare(String(b.name)));
}

export async function reassignScreen(_params, query) {
  const heading = h("h1", {}, T.title);
  if (!isManager()) return { title: T.title, el: h("div", { class: "screen" }, heading, empty(T.notManager, "team-not-manager")) };
  await refreshUsers().catch(() => {});
  const [accounts, users, names] = await Promise.all([chosen(query), teamUsers(), userNames()]);
  if (!accounts.length) {
    return { title: T.title, el: h("div", { class: "screen" }, heading, empty(T.none, "reassign-empty"),
      link(T.choose, "#/accounts?select=1", "reassign-choose", "button-link")) };
  }
  const user = me();
  const team = users.filter((u) => user.role === "admin" || u.team_id === user.team_id)
    .sort((a, b) => a.username.localeCompare(b.username));
  const counts = await hangingOff(accounts.map((a) => a.id));
  const to = field({ name: "owner_id", label: T.to, type: "select", testid: "reassign-to",
    options: [["", T.pick], ...team.map((u) => [u.id, `${u.username} (${ROLES[u.role] || u.role})`])] });
  const select = to.querySelector("select");
  const preview = h("p", { class: "notice", testid: "reassign-preview", "aria-live": "polite", hidden: true });
  const offline = h("p", { class: "notice", role: "alert", testid: "reassign-offline", hidden: true }, T.offline);
  const confirm = h("button", { type: "button", class: "primary", testid: "reassign-confirm", disabled: true });
  const progress = h("progress", { testid: "reassign-progress", max: String(accounts.length), value: "0", hidden: true });
  const progressText = h("p", { class: "hint", "aria-live": "polite" });
  const summary = h("div", { testid: "reassign-summary", role: "status", hidden: true });
  let moving = [];

  function update() {
    const target = team.find((u) => u.id === select.value);
    moving = target ? accounts.filter((a) => a.owner_id !== target.id) : [];
    preview.hidden = !target;
    if (target) {
      const kept = accounts.length - moving.length;
      preview.textContent = [T.preview(moving.length, target.username),
        kept ? T.already(kept, target.username) : null].filter(Boolean).join(" ");
      preview.dataset.count = String(moving.length);
    }
    confirm.textContent = T.confirm(moving.length);
    confirm.disabled = !target || !moving.length || !navigator.onLine || !progress.hidden;
    offline.hidden = navigator.onLine;
  }

  confirm.addEventListener("click", async () => {
    if (!navigator.onLine) return update();
    const target = select.value;
    const list = moving;
    progress.hidden = false;
    select.disabled = true;
    update();
    const results = await reassign(list, target, (done, total) => {
      progress.value = done;
      progress.dataset.done = String(done);
      progressText.textContent = T.progress(done, total);
    });
    const failed = results.filter((r) => !r.ok);
    summary.dataset.moved = String(results.length - failed.length);
    summary.dataset.failed = String(failed.length);
    summary.replaceChildren(h("p", {}, T.summary(results.length - failed.length, failed.length)),
      failed.length ? h("ul", { class: "list" }, failed.map((r) => h("li", { class: "row", testid: "reassign-failure",
        dataset: { id: r.account.id } }, h("span", { class: "row-main" }, h("span", { class: "row-title" }, r.account.name),
        h("span", { class: "error" }, r.error))))) : null,
      link(T.back, "#/accounts", "reassign-done", "button-link"));
    summary.hidden = false;
    syncNow();
  });
  select.addEventListener("change", update);
  const onNet = () => update();
  window.addEventListener("online", onNet);
  window.addEventListener("offline", onNet);
  update();

  const el = h("div", { class: "screen" }, heading,
    section(T.count(accounts.length), "reassign-accounts",
      h("ul", { class: "list" }, accounts.slice(0, SHOWN).map((a) =>
        h("li", { class: "row", testid: "reassign-account", dataset: { id: a.id } },
          h("span", { class: "row-main" }, h("span", { class: "row-title" }, a.name),
            h("span", { class: "row-sub" }, a.owner_id ? T.owner(names.get(a.owner_id) || "?") : T.noOwner))))),
      accounts.length > SHOWN ? h("p", { class: "hint" }, T.more(accounts.length - SHOWN)) : null),
    section(T.hanging, "reassign-hanging",
      h("ul", { class: "hanging" }, HANGING.map((table) => h("li", { testid: "reassign-hanging-count",
        dataset: { table, count: String(counts[table]) } }, h("strong", {}, String(counts[table])), ` ${T.tables[table](counts[table])}`))),
      h("p", { class: "hint" }, T.tasksKeep),
      h("p", { class: "hint", testid: "reassign-unsent" }, T.unsent)),
    h("div", { class: "stack" }, to, preview, offline, confirm, progress, progressText, summary));
  return {
    title: T.title, el,
    leave: () => {
      window.removeEventListener("online", onNet);
      window.removeEventListener("offline", onNet);
    },
  };
}
