import { t, tn } from "../i18n.js";
import { pendingCount } from "../records.js";
import { navigate } from "../router.js";
import { discardAndAdopt, login, session } from "../session.js";
import { field, h } from "../ui.js";

export async function loginScreen(_params, query) {
  const error = h("p", { class: "error", testid: "login-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary", testid: "login-submit" }, t("Sign in"));
  const note = [];
  if (query.get("expired") && session().user) {
    const pending = await pendingCount();
    note.push(
      h(
        "p",
        { class: "notice", testid: "login-expired" },
        pending
          ? tn("Your session ended. Sign in again as {user} to carry on; your unsent change is kept.",
            "Your session ended. Sign in again as {user} to carry on; your {n} unsent changes are kept.",
            pending, { user: session().user.username })
          : t("Your session ended. Sign in again as {user} to carry on.", { user: session().user.username }),
      ),
    );
  }
  const form = h(
    "form",
    { class: "stack", testid: "login-form", novalidate: true },
    field({ name: "username", label: t("Username"), testid: "login-username", required: true,
      autocomplete: "username", value: session().user ? session().user.username : "" }),
    field({ name: "password", label: t("Password"), type: "password", testid: "login-password",
      required: true, autocomplete: "current-password" }),
    error,
    submit,
  );
  const showError = (message) => {
    error.textContent = message;
    error.hidden = false;
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = form.elements.username.value.trim();
    const password = form.elements.password.value;
    if (!username || !password) {
      showError(t("Enter your username and password."));
      return;
    }
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = t("Signing in…");
    try {
      const result = await login(username, password);
      if (result.ok) {
        navigate("#/today");
        return;
      }
      if (result.blocked) {
        showBlocked(result.blocked);
        return;
      }
      showError(result.error);
    } finally {
      submit.disabled = false;
      submit.textContent = t("Sign in");
    }
  });

  // Another user's writes have not been sent: say so rather than drop them quietly.
  function showBlocked(blocked) {
    const n = blocked.pending;
    error.replaceChildren(
      tn("This phone still has {n} unsent change by {user}. Sign in as {user} to send it, or discard it and continue.",
        "This phone still has {n} unsent changes by {user}. Sign in as {user} to send them, or discard them and continue.",
        n, { user: blocked.previous.username }),
      h("button", {
        type: "button",
        class: "danger",
        testid: "login-discard",
        onclick: async () => {
          await discardAndAdopt(blocked);
          navigate("#/today");
        },
      }, t("Discard and continue")),
    );
    error.hidden = false;
  }

  const el = h(
    "div",
    { class: "screen login" },
    h("h1", {}, t("Sign in to fieldcrm")),
    ...note,
    navigator.onLine
      ? null
      : h("p", { class: "notice", testid: "login-offline" }, t("You are offline. Signing in needs a connection.")),
    form,
  );
  return { title: t("Sign in"), el };
}
