// JSON over fetch, with a timeout. Every call but login carries the bearer token.
// Answers {status, data, retryAfterS}; throws NetworkError when no HTTP answer arrived at all.

import { HttpFailure, fetchJson } from "./http.js";
import { serverError, t } from "./i18n.js";

export class NetworkError extends Error {
  constructor(message, { timeout = false } = {}) {
    super(message);
    this.name = "NetworkError";
    this.timeout = timeout;
  }
}

export async function apiFetch(path, options = {}) {
  try {
    return await fetchJson(path, options);
  } catch (err) {
    if (err instanceof HttpFailure) throw networkError(err.why);
    throw err;
  }
}

// The NetworkError for a failure of js/http.js (`why`), in the app's language.
export function networkError(why) {
  if (why === "timeout") return new NetworkError(t("The server did not answer in time"), { timeout: true });
  if (why === "cut") return new NetworkError(t("The answer was cut off"));
  return new NetworkError(t("No connection"));
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
