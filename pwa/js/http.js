// JSON over fetch with a timeout, in words of no language: js/api.js puts them into the
// app's, and the sync worker (js/sync-worker.js), which has no catalogue, posts them to
// the page. Answers {status, data, retryAfterS}; throws HttpFailure when no whole HTTP
// answer arrived (`why`: "timeout", "offline" or "cut").

export class HttpFailure extends Error {
  constructor(why) {
    super(why);
    this.name = "HttpFailure";
    this.why = why;
  }
}

export async function fetchJson(path, { method = "GET", body, token, timeoutMs = 15000 } = {}) {
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
      throw new HttpFailure(err && err.name === "AbortError" ? "timeout" : "offline");
    }
    let data = null;
    const type = response.headers.get("Content-Type") || "";
    if (response.status !== 204 && type.includes("json")) {
      try {
        data = await response.json();
      } catch (err) {
        if (err && err.name === "AbortError") throw new HttpFailure("cut");
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
