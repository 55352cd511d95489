// JSON over fetch, with a timeout. Every call but login carries the bearer token.
// Answers {status, data, retryAfterS}; throws NetworkError when no HTTP answer arrived at all.

import { serverError, t } from "./i18n.js";

export class NetworkError extends Error {
  constructor(message, { timeout = false } = {}) {
    super(message);
    this.name = "NetworkError";
    this.timeout = timeout;
  }
}

export async function apiFetch(path, { method = "GET", body, token, timeoutMs = 15000 } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
        cache: "no-store",
        credentials: "omit",
      });
    } catch (err) {
      const timeout = err && err.name === "AbortError";
      throw new NetworkError(timeout ? t("The server did not answer in time") : t("No connection"), {
        timeout,
      });
    }
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (response.status !== 204 && type.includes("json")) {
      try {
        data = await response.json();
      } catch (err) {
        if (err && err.name === "AbortError") throw new NetworkError(t("The answer was cut off"));
        data = null;
      }
    }
    return { status: response.status, data, retryAfterS: retryAfter(response) };
  } finally {
    clearTimeout(timer);
  }
}

// Seconds from a Retry-After header (a number of seconds or an HTTP date), or null.
function retryAfter(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

// A sentence to show for a failed call.
// In English the server's own sentence; in another language the sentence for its error
// code (serverError in i18n.js).
export function errorDetail(result, fallback = t("Something went wrong")) {
  const data = result && result.data;
  const code = data && typeof data.error === "string" ? data.error : null;
  const detail = data && typeof data.detail === "string" && data.detail ? data.detail : null;
  if (code || detail) return serverError(code, detail || code);
  return fallback;
}
