import { pendingCount } from "../records.js";
import { navigate } from "../router.js";
import { discardAndAdopt, login, session } from "../session.js";
import { field, h } from "../ui.js";

export async function loginScreen(_params, query) {
  const error = h("p", { class: "error", testid: "login-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "primary", testid: "login-submit" }, "Sign in");
  const note = [];
  if (query.get("expired") && session().user) {
    const pending = await pendingCount();
    note.push(
      h(
        "p",
        { class: "notice", testid: "login-expired" },
        `Your session ended. Sign in again as ${session().user.username} to carry on` +
          (pending ? `; your ${pending} unsent change${pending === 1 ? " is" : "s are"} kept.` : "."),
      ),
    );
  }
  const form = h(
    "form",
    { class: "stack", testid: "login-form", novalidate: true },
    field({ name: "username", label: "Username", testid: "login-username", required: true,
      autocomplete: "username", value: session().user ? session().user.username : "" }),
    field({ name: "password", label: "Password", type: "password", testid: "login-password",
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
      showError("Enter your username and password.");
      return;
    }
    error.hidden = true;
    submit.disabled = true;
    submit.textContent = "Signing in…";
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
      submit.textContent = "Sign in";
    }
  });

  // Another user's writes have not been sent: say so rather than drop them quietly.
  function showBlocked(blocked) {
    const n = blocked.pending;
    error.replaceChildren(
      `This phone still has ${n} unsent change${n === 1 ? "" : "s"} by ${blocked.previous.username}. ` +
        `Sign in as ${blocked.previous.username} to send ${n === 1 ? "it" : "them"}, or discard ` +
        `${n === 1 ? "it" : "them"} and continue.`,
      h("button", {
        type: "button",
        class: "danger",
        testid: "login-discard",
        onclick: async () => {
          await discardAndAdopt(blocked);
          navigate("#/today");
        },
      }, "Discard and continue"),
    );
    error.hidden = false;
  }

  const el = h(
    "div",
    { class: "screen login" },
    h("h1", {}, "Sign in to fieldcrm"),
    ...note,
    navigator.onLine
      ? null
      : h("p", { class: "notice", testid: "login-offline" }, "You are offline. Signing in needs a connection."),
    form,
  );
  return { title: "Sign in", el };
}
