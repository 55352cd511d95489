// Section 9's rule on the phone, offline: is this new account likely one the phone already
// holds? The same rule as the server's (server/transfer/matching.py; e2e/test_duplicates.py
// feeds both the same pairs): names alike once legal forms, case, accents and punctuation
// are set aside (words sorted, then 2·LCS / (len a + len b) >= 0.85) and within 150 m; or
// the same phone, email or website domain. The phone compares E.164 numbers where the
// server has made them, else digits: a new account's E.164 form is the server's to make.

import { t } from "./i18n.js";
import { on } from "./events.js";
import { geodesicDistanceM } from "./geodesic.js";
import { allRows } from "./records.js";

export const NEAR_M = 150;
const NAME_SIMILAR = 0.85;
const SCORES = { phone: 0.9, email: 0.9, domain: 0.8 };
const LEGAL_FORMS = new Set(`sa sas sasu sarl eurl sci snc scop selarl eirl ei scp gie earl gaec
  gmbh ag kg ohg ug ev mbh kgaa
  ltd limited plc llp llc inc incorporated corp corporation co company cie
  bv nv vof sl slu srl spa snc sas spa sro as oy ab aps asa
  et and`.split(/\s+/));
const SHARED_DOMAINS = new Set(`facebook.com instagram.com linkedin.com twitter.com x.com google.com goo.gl
  sites.google.com business.site wixsite.com wordpress.com blogspot.com pagesjaunes.fr
  linktr.ee youtube.com tiktok.com`.split(/\s+/));
const UNDECOMPOSABLE = { "ø": "o", "ł": "l", "đ": "d", "ß": "ss", "æ": "ae", "œ": "oe", "þ": "th", "ð": "d", "ı": "i" };

// "Électricité Laurent S.A.R.L." -> "electricite laurent"
export function nameKey(name) {
  if (!name) return "";
  let text = [...name.toLowerCase()].map((c) => UNDECOMPOSABLE[c] || c).join("");
  text = text.normalize("NFKD").replace(/\p{M}/gu, "");
  text = text.replaceAll("&", " and ");
  // Dotted initials ("s.a.r.l.") joined first; other punctuation then separates words.
  text = text.replace(/(?<![\p{L}\p{N}_])(?:[\p{L}\p{N}_]\.){2,}/gu, (m) => m.replaceAll(".", ""));
  const words = text.replace(/[^\p{L}\p{N}\s]|_/gu, " ").split(/\s+/).filter(Boolean);
  const kept = words.filter((w) => !LEGAL_FORMS.has(w));
  return (kept.length ? kept : words).join(" ");
}

function lcsLength(a, b) {
  const row = new Uint16Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = 0;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = a[i - 1] === b[j - 1] ? diagonal + 1 : Math.max(row[j], row[j - 1]);
      diagonal = above;
    }
  }
  return row[b.length];
}

// rapidfuzz's token_sort_ratio / 100: the words sorted, then the Indel similarity.
export function nameSimilarity(a, b) {
  if (!a || !b) return 0;
  const x = a.split(" ").sort().join(" ");
  const y = b.split(" ").sort().join(" ");
  return (2 * lcsLength([...x], [...y])) / ([...x].length + [...y].length);
}

export function emailKey(email) {
  if (!email) return "";
  let text = email.trim().toLowerCase();
  if (text.startsWith("mailto:")) text = text.slice(7);
  const at = text.lastIndexOf("@");
  if (at <= 0) return "";
  return text.slice(at + 1).includes(".") ? text : "";
}

export function domainKey(website) {
  if (!website) return "";
  let text = website.trim().toLowerCase().replace(/^[a-z][a-z0-9+.-]*:\/\//, "");
  text = text.split(/[/?#]/, 1)[0];
  text = text.slice(text.lastIndexOf("@") + 1).split(":", 1)[0].replace(/\.+$/, "");
  if (text.startsWith("www.")) text = text.slice(4);
  if (!/^[a-z0-9.-]+\.[a-z]{2,}$/.test(text) || SHARED_DOMAINS.has(text)) return "";
  return text;
}

function phoneKey(account) {
  if (account.phone_e164) return account.phone_e164;
  const digits = String(account.phone || "").replace(/\D/g, "");
  return digits.length >= 6 ? (String(account.phone).trim().startsWith("+") ? `+${digits}` : digits) : "";
}

// Equal, or a national number ("0478000001", trunk prefix 0 as in most of Europe) that is
// an E.164 number ("+33478000001") without its country code: what the server would make
// of it for that country.
function samePhone(a, b) {
  if (!a || !b) return false;
  if (a === b) return true;
  const [e164, national] = a.startsWith("+") ? [a, b] : [b, a];
  return e164.startsWith("+") && /^0\d{6,}$/.test(national) && e164.endsWith(national.slice(1));
}

// What the rule compares of an account. The name's key is made only when needed: most
// accounts are ruled out by their position first, and making it is the costly part.
class Keys {
  constructor(account) {
    const placed = typeof account.lat === "number" && typeof account.lng === "number";
    this.account = account;
    this.name = undefined;
    this.lat = placed ? account.lat : null;
    this.lng = placed ? account.lng : null;
    this.phone = phoneKey(account);
    this.email = emailKey(account.email);
    this.domain = domainKey(account.website);
  }
}

const keys = (account) => new Keys(account);

function nameOf(k) {
  if (k.name === undefined) k.name = nameKey(k.account.name);
  return k.name;
}

// 150 m at most in latitude: a meridian degree is at least 110,574 m long (at the equator),
// and no path between two latitudes is shorter than the meridian between them.
const NEAR_DEG = NEAR_M / 110574;
// The great circle on a sphere of the ellipsoid's smallest radius of curvature never
// exceeds the geodesic (geo/distance.py's distance_lower_bound_m): past NEAR_M on it, the
// two are not near, and the exact distance need not be worked out.
const INNER_RADIUS_M = 6335439.327;

function lowerBoundM(lat1, lng1, lat2, lng2) {
  const rad = Math.PI / 180;
  const a = Math.sin(((lat2 - lat1) * rad) / 2) ** 2
    + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(((lng2 - lng1) * rad) / 2) ** 2;
  return 2 * INNER_RADIUS_M * Math.atan2(Math.sqrt(Math.min(1, a)), Math.sqrt(Math.max(0, 1 - a)));
}

function compareKeys(x, y) {
  const reasons = [];
  const scores = [];
  let distanceM = null;
  if (x.lat !== null && y.lat !== null && Math.abs(x.lat - y.lat) <= NEAR_DEG
      && lowerBoundM(x.lat, x.lng, y.lat, y.lng) <= NEAR_M) {
    const similarity = nameSimilarity(nameOf(x), nameOf(y));
    if (similarity >= NAME_SIMILAR) {
      const metres = geodesicDistanceM(x.lat, x.lng, y.lat, y.lng);
      if (metres <= NEAR_M) {
        distanceM = metres;
        reasons.push("name", `distance_m=${Math.round(metres)}`);
        scores.push(similarity * (1 - (0.25 * metres) / NEAR_M));
      }
    }
  }
  for (const reason of ["phone", "email", "domain"]) {
    const same = reason === "phone" ? samePhone(x.phone, y.phone) : x[reason] === y[reason];
    if (x[reason] && same) {
      reasons.push(reason);
      scores.push(SCORES[reason]);
    }
  }
  if (!reasons.length) return null;
  const unlikely = scores.reduce((p, s) => p * (1 - s), 1);
  return { score: Math.round((1 - unlikely) * 1000) / 1000, reasons, distanceM };
}

// {score, reasons, distanceM} when a and b are likely the same account, else null.
export function compareAccounts(a, b) {
  return compareKeys(keys(a), keys(b));
}

// The accounts the phone holds (`heldAccounts()`, or plain rows) that `candidate` is likely
// the same as, the likeliest first.
export function likelyDuplicates(candidate, accounts, limit = 3) {
  const x = keys(candidate);
  const found = [];
  for (const entry of accounts) {
    const y = entry instanceof Keys ? entry : keys(entry);
    if (y.account.id === candidate.id) continue;
    const match = compareKeys(x, y);
    if (match) found.push({ account: y.account, ...match });
  }
  return found.sort((a, b) => b.score - a.score).slice(0, limit);
}

// The accounts the phone holds, with their keys, kept between checks: reading 10,000 rows
// from IndexedDB costs far more than comparing them (bench/pwa_duplicates.py). Dropped when
// local rows change; while a screen that checks is open (keepWarm), made again in the
// background soon after, so that its "Save" finds them ready.
let held = null;
let warm = 0;
let rebuild = null;

on("data", () => {
  held = null;
  if (!warm) return;
  clearTimeout(rebuild);
  rebuild = setTimeout(() => heldAccounts(), 300);
});

export function heldAccounts() {
  if (!held) {
    const made = allRows("accounts").then((rows) => rows.map(keys));
    made.catch(() => { if (held === made) held = null; });
    held = made;
  }
  return held;
}

// Called by a screen that will check (the account form, Nearby's capture) when it opens;
// the function it returns, when it is left.
export function keepWarm() {
  warm += 1;
  heldAccounts();
  let done = false;
  return () => {
    if (!done) warm -= 1;
    done = true;
  };
}

// "Électricité Laurent, 18 m away" / "Électricité Laurent, same phone"
export function matchText(match) {
  const why = match.distanceM !== null
    ? `${Math.round(match.distanceM)} m away`
    : `same ${match.reasons.includes("phone") ? "phone" : match.reasons.includes("email") ? "email" : "website"}`;
  return `${match.account.name}, ${why}`;
}

// The warning a form shows before saving an account the phone likely holds already: the
// likeliest match with a link to open it, and "Save anyway" (nothing a rep captured is
// refused for being similar), which saves through `resubmit`. `allowed` answers whether to
// save now.
export function duplicateGate(container, makeLink, resubmit) {
  let confirmedFor = null;
  return function allowed(candidate, accounts) {
    const key = JSON.stringify(candidate);
    if (confirmedFor === key) return true;
    const [match] = likelyDuplicates(candidate, accounts, 1);
    if (!match) {
      container.replaceChildren();
      container.hidden = true;
      return true;
    }
    const again = document.createElement("button");
    again.type = "button";
    again.dataset.testid = "duplicate-save-anyway";
    again.textContent = t("Save anyway");
    again.addEventListener("click", () => {
      confirmedFor = key;
      container.hidden = true;
      resubmit();
    });
    const note = document.createElement("p");
    note.dataset.testid = "duplicate-match";
    note.textContent = t("Likely already on your list: {match}. Open it instead?", { match: matchText(match) });
    const row = document.createElement("div");
    row.className = "actions";
    row.append(makeLink(match.account), again);
    container.replaceChildren(note, row);
    container.hidden = false;
    again.focus();
    return false;
  };
}
