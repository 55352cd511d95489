// "Me": who is signed in, this device's reminders, its sync identity, sign-out.

import { LANGUAGES, formatList, languageChoice, phoneLanguage, setLanguage, t, tn } from "../i18n.js";
import { calendarSlot } from "../calendar-feed.js";
import { getMeta } from "../db.js";
import { draftCount } from "../drafts.js";
import { installSlot } from "../install.js";
import { pushSlot } from "../push.js";
import { pendingCount } from "../records.js";
import { navigate } from "../router.js";
import { logout, me } from "../session.js";
import { shellVersion } from "../sw-update.js";
import { field, h, section } from "../ui.js";
import { territorySlot } from "./territory.js";

const ROLES = { rep: t("Sales rep"), manager: t("Manager"), admin: t("Administrator") };

function logoutWarning(pending, drafts) {
  const lost = formatList([pending ? t("changes not sent yet") : null,
    drafts ? tn("{n} unsaved draft", "{n} unsaved drafts", drafts) : null].filter(Boolean));
  return pending
    ? t("Signing out erases everything on this phone, including {lost}. Sync first if you can.", { lost })
    : t("Signing out erases everything on this phone, including {lost}. Finish them first if you can.", { lost });
}

// The app's language: the phone's by default; a choice is kept on this phone (offline too)
// and the app opens again in it.
function languageSection() {
  const auto = LANGUAGES[phoneLanguage()];
  const select = field({ name: "language", label: t("Language of the app"), type: "select", testid: "me-language",
    value: languageChoice(),
    options: [["auto", t("Phone's language ({language})", { language: auto })], ...Object.entries(LANGUAGES)] });
  select.querySelector("select").addEventListener("change", (event) => setLanguage(event.target.value));
  return section(t("Language"), "me-language-card", select);
}

export async function settingsScreen() {
  const user = me();
  const [pending, clientId, version, drafts] = await Promise.all([
    pendingCount(), getMeta("client_id"), shellVersion(), draftCount()]);
  const signOut = h("button", { type: "button", class: "danger", testid: "logout-button" },
    pending ? tn("Sign out and discard {n} unsent change", "Sign out and discard {n} unsent changes", pending) : t("Sign out"));
  signOut.addEventListener("click", async () => {
    signOut.disabled = true;
    await logout();
    navigate("#/login");
  });
  const el = h("div", { class: "screen" },
    h("h1", {}, t("Me")),
    section(t("Account"), "me-account",
      h("dl", { class: "details" },
        h("dt", {}, t("User")), h("dd", { testid: "me-username" }, user ? user.username : ""),
        h("dt", {}, t("Role")), h("dd", { testid: "me-role" }, user ? ROLES[user.role] || user.role : ""))),
    languageSection(),
    installSlot(),
    pushSlot(),
    calendarSlot(),
    territorySlot(),
    section(t("This phone"), "me-device",
      h("dl", { class: "details" },
        h("dt", {}, t("Unsent changes")), h("dd", { testid: "me-pending" }, String(pending)),
        h("dt", {}, t("Device id")), h("dd", { testid: "me-client-id", class: "mono" }, clientId || ""),
        h("dt", {}, t("App version")), h("dd", { testid: "me-app-version", class: "mono" }, version)),
      pending || drafts
        ? h("p", { class: "notice", testid: "logout-warning" },
            logoutWarning(pending, drafts))
        : h("p", { class: "hint" }, t("Signing out erases this app's data from the phone.")),
      signOut),
  );
  return { title: t("Me"), el, live: true };
}
