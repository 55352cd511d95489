// Hybrid logical clock, [unix ms, counter], as in SPEC section 4. The device's state is
// kept in the meta store under "hlc" and advanced inside the write transaction.

export const ZERO = [0, 0];
// The bounds of a clock (SPEC 4 rule 3, v1.1), as the server checks them.
export const MAX_MS = 2 ** 53 - 1;
export const MAX_COUNTER = 2 ** 31 - 1;

export function compare(a, b) {
  return a[0] - b[0] || a[1] - b[1];
}

// The clock for a local write: never behind the last one, the counter breaks ties when
// the wall clock has not moved on (or went backwards), and carries into the next
// millisecond rather than pass its bound.
// pwa/sw.js has a copy (it cannot import modules): keep them in step.
export function tick(last, now = Date.now()) {
  const prev = valid(last) ? last : ZERO;
  const ms = Math.max(now, prev[0]);
  if (ms !== prev[0]) return [ms, 0];
  return prev[1] >= MAX_COUNTER ? [ms + 1, 0] : [ms, prev[1] + 1];
}

// After a sync: adopt the server's hlc_max when it is ahead, so the next tick passes it.
export function observe(last, remote) {
  const prev = valid(last) ? last : ZERO;
  return valid(remote) && compare(remote, prev) > 0 ? [remote[0], remote[1]] : prev;
}

// A clock within the bounds; anything else (a hostile server's, a corrupted store's) is
// ignored rather than adopted.
export function valid(clock) {
  return (
    Array.isArray(clock) &&
    clock.length === 2 &&
    Number.isInteger(clock[0]) &&
    Number.isInteger(clock[1]) &&
    clock[0] >= 0 &&
    clock[0] < MAX_MS &&
    clock[1] >= 0 &&
    clock[1] <= MAX_COUNTER
  );
}
