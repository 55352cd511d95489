// Me → "Phone calendar": the link to the user's calendar feed (docs/calendar.md), made,
// copied or revoked here, and how to add it on an iPhone or an Android phone. The server
// keeps only a hash of the link, so the link is shown once, right after it is made.

import { t } from "./i18n.js";
import { apiFetch, errorDetail, NetworkError } from "./api.js";
import { session } from "./session.js";
import { h, section, toast } from "./ui.js";

async function call(path, options = {}) {
  try {
    return await apiFetch(path, { ...options, token: session().token });
  } catch (err) {
    if (err instanceof NetworkError) return { status: 0, data: null };
    throw err;
  }
}

export function calendarSlot() {
  const state = h("p", { class: "row-sub", testid: "calendar-state" }, t("Checking…"));
  const linkBox = h("div", { testid: "calendar-link-box", hidden: true });
  const privateBox = h("input", { type: "checkbox", id: "calendar-private", testid: "calendar-private" });
  const make = h("button", { type: "button", testid: "calendar-make" }, t("Get my calendar link"));
  const revoke = h("button", { type: "button", class: "danger", testid: "calendar-revoke", hidden: true },
    t("Turn the link off"));

  const showState = (feed) => {
    if (!feed) {
      state.textContent = t("Offline: connect to make or change the link.");
      return;
    }
    revoke.hidden = !feed.active;
    make.textContent = feed.active ? t("Make a new link") : t("Get my calendar link");
    state.textContent = feed.active
      ? (feed.private ? t("A link is on (private: no places). A new link turns the old one off.")
        : t("A link is on. A new link turns the old one off."))
      : t("No calendar link yet.");
  };

  const showLink = (url) => {
    const input = h("input", { type: "text", readonly: true, value: url, class: "mono",
      testid: "calendar-link", "aria-label": t("Calendar link") });
    const copy = h("button", { type: "button", class: "small", testid: "calendar-copy" }, t("Copy"));
    copy.addEventListener("click", async () => {
      input.select();
      try {
        await navigator.clipboard.writeText(url);
        toast(t("Link copied"));
      } catch {
        toast(t("Select the link and copy it"));
      }
    });
    linkBox.replaceChildren(
      h("p", { class: "notice" }, t("Add this link to your phone's calendar now: it is shown only once.")),
      h("div", { class: "copy-row" }, input, copy));
    linkBox.hidden = false;
  };

  make.addEventListener("click", async () => {
    make.disabled = true;
    const result = await call("/api/calendar/feed", { method: "POST", body: { private: privateBox.checked } });
    make.disabled = false;
    if (result.status === 200 && result.data) {
      showLink(result.data.url);
      showState({ active: true, private: result.data.private });
    } else {
      toast(result.status === 0 ? t("Offline: try again with a signal.") : errorDetail(result));
    }
  });

  revoke.addEventListener("click", async () => {
    revoke.disabled = true;
    const result = await call("/api/calendar/feed", { method: "DELETE" });
    revoke.disabled = false;
    if (result.status === 204) {
      linkBox.hidden = true;
      linkBox.replaceChildren();
      showState({ active: false });
      toast(t("Calendar link turned off"));
    } else {
      toast(result.status === 0 ? t("Offline: try again with a signal.") : errorDetail(result));
    }
  });

  call("/api/calendar/feed").then((result) => showState(result.status === 200 ? result.data : null));

  return section(t("Phone calendar"), "me-calendar",
    h("p", { class: "hint" },
      t("Your tasks and planned visits in your phone's calendar, with their reminders: they ring even with no signal.")),
    state,
    h("div", { class: "check-row" }, privateBox,
      h("label", { for: "calendar-private" }, t("Private: leave out customers' names and addresses"))),
    h("div", { class: "actions" }, make, revoke),
    linkBox,
    h("details", { testid: "calendar-help" },
      h("summary", {}, t("How to add it")),
      h("p", {}, h("strong", {}, t("iPhone: ")),
        t("Settings → Calendar → Accounts → Add Account → Other → Add Subscribed Calendar, then paste the link.")),
      h("p", {}, h("strong", {}, t("Android: ")),
        t("install ICSx⁵ (Play Store or F-Droid), tap +, paste the link: the events and alarms appear in the phone's calendar. Or, on a computer, in Google Calendar: Other calendars → + → From URL."))));
}
