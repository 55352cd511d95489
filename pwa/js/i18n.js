// The message catalogue (docs/i18n.md). English is the source language: the code says
// t("Plan the visit") and the English text is its own key, so English costs nothing at
// startup. Another language is a JSON object in js/lang/LANG.js (English text -> its
// translation), precached with the shell and imported here before any screen module runs
// (top-level await), so module-level labels are translated too and the catalogue works
// offline from the first start. Changing the language reloads the page.

const KEY = "fieldcrm.lang";
// The languages the app speaks, each in its own words (Me's switch lists them).
export const LANGUAGES = { en: "English", fr: "Français" };

function stored() {
  try {
    return localStorage.getItem(KEY) || "auto";
  } catch {
    return "auto";
  }
}

// The phone's first language the app speaks (navigator.languages, in the phone's order).
// (Not in a browser, as in the unit tests' Node: English.)
const browser = globalThis.navigator || {};

export function phoneLanguage() {
  const tags = browser.languages && browser.languages.length ? browser.languages : [browser.language];
  for (const tag of tags) {
    const base = String(tag || "").slice(0, 2).toLowerCase();
    if (base in LANGUAGES) return base;
  }
  return "en";
}

const choice = stored();
export const lang = choice in LANGUAGES ? choice : phoneLanguage();
// The tag Intl formats with: the phone's own variant of the language (fr-CA, en-GB) when
// it has one, else the bare language.
export const locale =
  (browser.languages || []).find((tag) => String(tag).slice(0, 2).toLowerCase() === lang) || lang;

let messages = {};
if (lang !== "en") {
  try {
    messages = (await import(`./lang/${lang}.js`)).default;
  } catch (err) {
    console.error("fieldcrm: the catalogue did not load; English it is", err);
  }
}
if (globalThis.document) {
  document.documentElement.lang = lang;
  // The installed app's description in the language too (docs/i18n.md, "The manifest").
  const manifest = document.querySelector("link[rel=manifest]");
  if (manifest && lang !== "en") manifest.href = `/manifest.${lang}.webmanifest`;
}

// "auto" (the phone's language) or a language code.
export function languageChoice() {
  return choice;
}

// Kept in localStorage (read synchronously at startup, offline too); the page reloads in
// the new language.
export function setLanguage(value) {
  try {
    if (value === "auto") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, value);
  } catch {
    return;
  }
  location.reload();
}

function fill(text, params) {
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// The translation of `text`, with {name} placeholders filled from `params`.
export function t(text, params) {
  const found = messages[text];
  return fill(typeof found === "string" ? found : text, params);
}

const rules = new Intl.PluralRules(locale);
const numbers = new Intl.NumberFormat(locale);

// A count in words: tn("{n} change", "{n} changes", n). The catalogue's entry (keyed by
// the English plural) holds the language's forms, {one, other} (and many, few... as
// Intl.PluralRules names them); {n} is the number, formatted.
export function tn(one, other, n, params) {
  const form = rules.select(n);
  const entry = messages[other];
  const text = entry && typeof entry === "object" ? entry[form] || entry.other : form === "one" ? one : other;
  return fill(text, { n: numbers.format(n), ...params });
}

// Formatters with options, made once each (Nearby formats a hundred distances a draw).
const formatters = new Map();
export function formatNumber(n, options) {
  if (!options) return numbers.format(n);
  const key = JSON.stringify(options);
  let format = formatters.get(key);
  if (!format) formatters.set(key, (format = new Intl.NumberFormat(locale, options)));
  return format.format(n);
}

// An amount in its currency (ISO 4217 code), as the language writes it: 1 200,00 €.
export function formatMoney(amount, currency) {
  try {
    if (currency) return new Intl.NumberFormat(locale, { style: "currency", currency }).format(amount);
  } catch {
    // not an ISO code: the number and what was typed
  }
  return `${numbers.format(amount)} ${currency || ""}`.trim();
}

// A list joined as the language does: "a, b and c", « a, b et c ».
export function formatList(items) {
  return new Intl.ListFormat(locale, { type: "conjunction" }).format(items);
}

// A text whose translation depends on where it is shown (gettext's pgettext): the
// catalogue's key is "context|text"; without one, the text's own translation.
export function tc(context, text, params) {
  const found = messages[`${context}|${text}`];
  return typeof found === "string" ? fill(found, params) : t(text, params);
}

// The shell's own words (index.html): an element with data-i18n has its text translated
// (data-i18n="tab": in that context, see tc), and the attributes named in data-i18n-attr
// ("aria-label title").
export function translateShell(root) {
  for (const el of root.querySelectorAll("[data-i18n]")) {
    const text = el.textContent.trim();
    el.textContent = el.dataset.i18n ? tc(el.dataset.i18n, text) : t(text);
  }
  for (const el of root.querySelectorAll("[data-i18n-attr]")) {
    for (const name of el.dataset.i18nAttr.split(" ")) {
      if (el.hasAttribute(name)) el.setAttribute(name, t(el.getAttribute(name)));
    }
  }
}

// Marks a text for the catalogue where it is translated later, with t(variable).
export function mark(text) {
  return text;
}

// A server error shown to the rep (SPEC: {"error": code, "detail": sentence}): in English
// the server's own sentence; in another language the catalogue's sentence for its code
// (key "error|CODE"), else the server's.
export function serverError(code, detail) {
  const found = code && messages[`error|${code}`];
  return typeof found === "string" ? found : detail || t("Something went wrong");
}
