import { formatMoney, t, tn } from "../i18n.js";
import { authorName, pendingMark, taskRow, visitRow } from "../components.js";
import { directionsHref, hasPosition, positionText } from "../map.js";
import { exportButton, wasErased } from "../privacy.js";
import { allRows, getRecord, pendingKeys, rowsOfAccount } from "../records.js";
import { userNames } from "../session.js";
import { isManager } from "../team.js";
import { mayChange } from "./visit.js";
import { LABELS, empty, formatDate, formatDateTime, h, link, section } from "../ui.js";

const byNewest = (key) => (a, b) => String(b[key] || "").localeCompare(String(a[key] || ""));

function detail(label, value, testid, href = null) {
  if (value === null || value === undefined || value === "") return null;
  return [
    h("dt", {}, label),
    h("dd", { testid }, href ? h("a", { href, rel: "noopener" }, String(value)) : String(value)),
  ];
}

// The address as a link the phone's maps app opens: Apple Maps on an iPhone or iPad, the
// `geo:` app chooser on Android, OpenStreetMap's search elsewhere.
export function addressHref(address, agent = navigator.userAgent) {
  const q = encodeURIComponent(address);
  if (/iPhone|iPad|iPod|Macintosh.*Mobile/.test(agent)) return `https://maps.apple.com/?q=${q}`;
  if (/Android/.test(agent)) return `geo:0,0?q=${q}`;
  return `https://www.openstreetmap.org/search?query=${q}`;
}

function safeWebsite(url) {
  // Only http(s) links: a synced value must not become a javascript: URL.
  const text = String(url || "");
  if (/^https?:\/\//i.test(text)) return text;
  return /^[\w.-]+\.[a-z]{2,}(\/.*)?$/i.test(text) ? `https://${text}` : null;
}

export async function accountScreen({ id }) {
  const account = await getRecord("accounts", id);
  if (!account) {
    const erased = await wasErased(id);
    return {
      title: t("Account"),
      live: true,
      el: h("div", { class: "screen" }, h("h1", {}, erased ? t("Account erased") : t("Account not found")),
        erased
          ? empty(t("This account was erased on request: nothing of it is kept, on this phone or on the server."),
            "account-erased")
          : empty(t("This account is not on this phone. It may not have synced yet, or it left your team."),
            "account-missing"),
        link(t("Back to accounts"), "#/accounts", "account-back", "button-link")),
    };
  }
  const [contacts, visits, notes, tasks, deals, conflicts, pending, names, files] = await Promise.all([
    rowsOfAccount("contacts", id),
    rowsOfAccount("visits", id),
    rowsOfAccount("notes", id),
    rowsOfAccount("tasks", id),
    rowsOfAccount("deals", id),
    allRows("conflicts"),
    pendingKeys(),
    userNames(),
    rowsOfAccount("attachments", id),
  ]);
  // Photos and voice notes, newest first: the module that draws them only when there are some.
  const attach = files.length ? await import("../attachments.js") : null;
  // Conflicts name their record, not its account: match the account and what hangs off it.
  const mine = new Set([id, ...[contacts, visits, notes, tasks, deals].flat().map((r) => r.id)]);
  const open = conflicts.filter((c) => !c.resolved && mine.has(c.record_id));
  const address = [account.street, [account.postal_code, account.city].filter(Boolean).join(" "),
    account.region, account.country].filter(Boolean).join(", ");
  const website = safeWebsite(account.website);
  // The position as a small map (js/account-map.js, loaded only for an account placed on one).
  const small = hasPosition(account) ? (await import("../account-map.js")).accountMap(account, address) : null;

  const el = h(
    "div",
    { class: "screen", testid: "account-screen", dataset: { id } },
    h("div", { class: "title-row" },
      h("h1", { testid: "account-name" }, account.name),
      h("span", { class: `pill pill-${account.status}`, testid: "account-status" },
        LABELS.status[account.status] || account.status),
      pendingMark(pending, "accounts", id)),
    h("div", { class: "actions" },
      link(t("Log a visit"), `#/visit/new?account=${id}`, "account-log-visit", "button-link primary"),
      link(t("Add a note"), `#/note/new?account=${id}`, "account-add-note", "button-link"),
      link(t("Plan a visit"), `#/task/new?account=${id}&kind=visit`, "account-plan-visit", "button-link"),
      hasPosition(account)
        ? link(t("Directions"), directionsHref(account), "account-directions", "button-link")
        : null,
      link(t("Edit"), `#/account/${id}/edit`, "account-edit", "button-link"),
      link(t("History"), `#/history/accounts/${id}`, "account-history", "button-link"),
      isManager() ? link(t("Reassign"), `#/reassign?ids=${id}`, "account-reassign-one", "button-link") : null,
      isManager() ? exportButton("accounts", id) : null),
    open.length
      ? h("p", { class: "notice" }, link(tn("{n} unresolved conflict", "{n} unresolved conflicts", open.length),
          "#/conflicts", "account-conflicts", "row-link"))
      : null,
    section(t("Details"), "account-details",
      h("dl", { class: "details" },
        detail(t("Phone"), account.phone, "account-phone", account.phone ? `tel:${account.phone}` : null),
        detail(t("Email"), account.email, "account-email", account.email ? `mailto:${account.email}` : null),
        detail(t("Website"), account.website, "account-website", website),
        detail(t("Address"), address, "account-address", address ? addressHref(address) : null),
        small ? null : detail(t("Position"), positionText(account), "account-position"),
        detail(t("Owner"), account.owner_id ? names.get(account.owner_id) || t("Another user") : null,
          "account-owner")),
      small && small.el),
    section(t("Contacts ({count})", { count: contacts.length }), "account-contacts",
      contacts.length
        ? h("ul", { class: "list" }, contacts.sort((a, b) => a.name.localeCompare(b.name)).map((c) =>
            h("li", { class: "row", testid: "contact-row", dataset: { id: c.id } },
              h("div", { class: "row-main" },
                h("span", { class: "row-title", testid: "contact-name" }, c.name),
                h("span", { class: "row-sub" }, [c.title, c.phone, c.email].filter(Boolean).join(" · "))),
              pendingMark(pending, "contacts", c.id),
              c.phone ? h("a", { href: `tel:${c.phone}`, class: "small button-link", testid: "contact-call",
                "aria-label": t("Call {name}", { name: c.name }) }, t("Call")) : null,
              link(t("Edit"), `#/contact/${c.id}/edit`, "contact-edit", "small button-link"))))
        : empty(t("No contacts yet."), "contacts-empty"),
      link(t("Add a contact"), `#/contact/new?account=${id}`, "account-add-contact", "button-link")),
    section(t("Visits ({count})", { count: visits.length }), "account-visits",
      visits.length
        ? h("ul", { class: "list timeline" },
            visits.sort(byNewest("started_at")).map((v) => visitRow(v, null, pending, names)))
        : empty(t("No visits yet."), "visits-empty")),
    attach ? section(t("Photos and voice notes ({count})", { count: files.length }), "account-attachments",
      attach.attachmentList(files.sort(byNewest("captured_at")))) : null,
    section(t("Notes ({count})", { count: notes.length }), "account-notes",
      notes.length
        ? h("ul", { class: "list" }, notes.sort(byNewest("created_at")).map((n) =>
            h("li", { class: "row note", testid: "note-row", dataset: { id: n.id } },
              h("div", { class: "row-main" },
                h("p", { class: "note-body", testid: "note-text" }, n.body),
                h("span", { class: "row-sub" },
                  h("span", { testid: "note-author" }, authorName(names, n.author_id)),
                  ` · ${n.created_at ? formatDateTime(n.created_at) : t("not synced yet")}`)),
              pendingMark(pending, "notes", n.id),
              mayChange(n.author_id) ? link(t("Edit"), `#/note/${n.id}/edit`, "note-edit", "button-link small") : null)))
        : empty(t("No notes yet."), "notes-empty")),
    section(t("Tasks ({count} open)", { count: tasks.filter((task) => !task.done).length }), "account-tasks",
      tasks.length
        ? h("ul", { class: "list" }, tasks
            .sort((a, b) => Number(a.done) - Number(b.done) || String(a.due_at || "~").localeCompare(String(b.due_at || "~")))
            .map((task) => taskRow(task, null, pending, names)))
        : empty(t("No tasks."), "tasks-empty"),
      link(t("Add a task"), `#/task/new?account=${id}`, "account-add-task", "button-link")),
    section(t("Deals ({count})", { count: deals.length }), "account-deals",
      deals.length
        ? h("ul", { class: "list" }, deals.sort(byNewest("updated_at")).map((d) =>
            h("li", { class: "row", testid: "deal-row", dataset: { id: d.id } },
              h("div", { class: "row-main" },
                h("span", { class: "row-title", testid: "deal-title" }, d.title),
                h("span", { class: "row-sub" }, [LABELS.stage[d.stage] || d.stage,
                  d.amount !== null && d.amount !== undefined ? formatMoney(d.amount, d.currency) : null,
                  d.close_date ? t("closes {date}", { date: formatDate(d.close_date) }) : null].filter(Boolean).join(" · "))),
              pendingMark(pending, "deals", d.id),
              link(t("Edit"), `#/deal/${d.id}/edit`, "deal-edit", "small button-link"))))
        : empty(t("No deals."), "deals-empty"),
      link(t("Add a deal"), `#/deal/new?account=${id}`, "account-add-deal", "button-link")),
  );
  return { title: account.name, el, live: true, leave: small && small.remove };
}
