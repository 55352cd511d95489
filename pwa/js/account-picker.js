// A form control that links a record to one of the accounts on this phone (offline too):
// type part of a name, a city, a postcode..., tap the account. The value is the account's
// id, in a hidden input the form reads like any other control; "" for none.

import { t } from "./i18n.js";
import { matchAccounts } from "./account-index.js";
import { getRecord } from "./records.js";
import { h, uid } from "./ui.js";

const SHOWN = 6;

// spec: {name, label, value}. Answers {block, control, sync}: call sync() after setting
// control.value from code (a restored draft), so the chosen name is shown.
export function accountPicker(spec) {
  const id = uid("account");
  const control = h("input", { type: "hidden", name: spec.name, testid: `field-${spec.name}` });
  control.value = spec.value || "";
  const search = h("input", { id, type: "search", testid: "account-picker-search", autocomplete: "off",
    placeholder: t("Name, city, postcode…"), "aria-describedby": `${id}-hint` });
  const options = h("ul", { class: "list picker-options", testid: "account-picker-options" });
  const chosenName = h("span", { class: "row-title", testid: "account-picker-name" });
  const chosen = h("div", { class: "row picker-chosen", testid: "account-picker-chosen", hidden: true },
    h("span", { class: "row-main" }, chosenName),
    h("button", { type: "button", class: "small", testid: "account-picker-clear",
      onclick: () => pick(null) }, t("Change")));
  const hint = h("p", { id: `${id}-hint`, class: "hint", testid: "account-picker-hint" });
  function pick(account) {
    control.value = account ? account.id : "";
    control.dispatchEvent(new Event("change", { bubbles: true }));
    search.value = "";
    options.replaceChildren();
    sync();
    (account ? chosen.querySelector("button") : search).focus();
  }

  async function sync() {
    const account = control.value ? await getRecord("accounts", control.value) : null;
    chosen.hidden = !control.value;
    search.hidden = !!control.value;
    chosenName.textContent = account
      ? [account.name, account.city].filter(Boolean).join(" · ")
      : control.value ? t("An account not on this phone") : "";
    hint.textContent = control.value ? "" : t("Optional. Type to find an account on this phone.");
  }

  search.addEventListener("input", async () => {
    const q = search.value.trim();
    const found = q ? await matchAccounts(q) : [];
    if (search.value.trim() !== q) return; // typed on meanwhile
    options.replaceChildren(...found.slice(0, SHOWN).map((a) =>
      h("li", {}, h("button", { type: "button", class: "picker-option", testid: "account-picker-option",
        dataset: { id: a.id }, onclick: () => pick(a) },
      h("span", { class: "row-title" }, a.name),
      h("span", { class: "row-sub" }, [a.postal_code, a.city].filter(Boolean).join(" ") || t("No address"))))));
    hint.textContent = !q ? t("Optional. Type to find an account on this phone.")
      : found.length === 0 ? t("No account on this phone matches.")
        : found.length > SHOWN ? t("{count} accounts match: the first {shown} are shown; type more.", { count: found.length, shown: SHOWN }) : "";
  });

  const block = h("div", { class: "field", testid: "account-picker" },
    h("label", { for: id }, spec.label), chosen, search, hint, options, control);
  sync();
  return { block, control, sync };
}
