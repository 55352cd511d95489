// Hybrid logical clock, [unix ms, counter], as in SPEC section 4. The device's state is
// kept in the meta store under "hlc" and advanced inside the write transaction.

export const ZERO = [0, 0];

export function compare(a, b) {
  return a[0] - b[0] || a[1] - b[1];
}

// The clock for a local write: never behind the last one, the counter breaks ties when
// the wall clock has not moved on (or went backwards).
// pwa/sw.js has a copy (it cannot import modules): keep them in step.
export function tick(last, now = Date.now()) {
  const prev = valid(last) ? last : ZERO;
  const ms = Math.max(now, prev[0]);
  return ms === prev[0] ? [ms, prev[1] + 1] : [ms, 0];
}

// After a sync: adopt the server's hlc_max when it is ahead, so the next tick passes it.
export function observe(last, remote) {
  const prev = valid(last) ? last : ZERO;
  return valid(remote) && compare(remote, prev) > 0 ? [remote[0], remote[1]] : prev;
}

function valid(clock) {
  return (
    Array.isArray(clock) &&
    clock.length === 2 &&
    Number.isInteger(clock[0]) &&
    Number.isInteger(clock[1])
  );
}
