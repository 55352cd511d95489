// "Me": who is signed in, this device's reminders, its sync identity, sign-out.

import { calendarSlot } from "../calendar-feed.js";
import { getMeta } from "../db.js";
import { draftCount } from "../drafts.js";
import { installSlot } from "../install.js";
import { pushSlot } from "../push.js";
import { pendingCount } from "../records.js";
import { navigate } from "../router.js";
import { logout, me } from "../session.js";
import { shellVersion } from "../sw-update.js";
import { h, section } from "../ui.js";
import { territorySlot } from "./territory.js";

export async function settingsScreen() {
  const user = me();
  const [pending, clientId, version, drafts] = await Promise.all([
    pendingCount(), getMeta("client_id"), shellVersion(), draftCount()]);
  const signOut = h("button", { type: "button", class: "danger", testid: "logout-button" },
    pending ? `Sign out and discard ${pending} unsent change${pending === 1 ? "" : "s"}` : "Sign out");
  signOut.addEventListener("click", async () => {
    signOut.disabled = true;
    await logout();
    navigate("#/login");
  });
  const el = h("div", { class: "screen" },
    h("h1", {}, "Me"),
    section("Account", "me-account",
      h("dl", { class: "details" },
        h("dt", {}, "User"), h("dd", { testid: "me-username" }, user ? user.username : ""),
        h("dt", {}, "Role"), h("dd", { testid: "me-role" }, user ? user.role : ""))),
    installSlot(),
    pushSlot(),
    calendarSlot(),
    territorySlot(),
    section("This phone", "me-device",
      h("dl", { class: "details" },
        h("dt", {}, "Unsent changes"), h("dd", { testid: "me-pending" }, String(pending)),
        h("dt", {}, "Device id"), h("dd", { testid: "me-client-id", class: "mono" }, clientId || ""),
        h("dt", {}, "App version"), h("dd", { testid: "me-app-version", class: "mono" }, version)),
      pending || drafts
        ? h("p", { class: "notice", testid: "logout-warning" },
            "Signing out erases everything on this phone, including " +
              [pending ? "changes not sent yet" : null,
                drafts ? `${drafts} unsaved draft${drafts === 1 ? "" : "s"}` : null]
                .filter(Boolean).join(" and ") +
              (pending ? ". Sync first if you can." : ". Finish them first if you can."))
        : h("p", { class: "hint" }, "Signing out erases this app's data from the phone."),
      signOut),
  );
  return { title: "Me", el, live: true };
}
