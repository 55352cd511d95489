// The order of a day's stops that makes the drive shortest, on the phone, offline: the same
// rule as the server's geo/route.py (SPEC section 14). Up to 10 stops the best order
// (Held-Karp over subsets); up to 50, the shortest of eight local searches (nearest neighbour,
// then seeded random insertions, each improved by 2-opt and Or-opt moves).

import { geodesicDistanceM } from "./geodesic.js";

export const EXACT_STOPS = 10;
export const MAX_STOPS = 50;
const RESTARTS = 8;
const SEED = 20261206;

// start: {lat, lng}; stops: [{lat, lng}]. Answers {order: [indexes into stops],
// distanceM, asGivenM, legsM: [start -> first stop, ...(, last stop -> start)]}.
export function planRoute(start, stops, { backToStart = false } = {}) {
  if (stops.length > MAX_STOPS) throw new RangeError(`at most ${MAX_STOPS} stops`);
  const points = [start, ...stops];
  const d = matrix(points);
  const n = stops.length;
  const best = n <= EXACT_STOPS ? heldKarp(d, n, backToStart) : localSearch(d, n, backToStart);
  const given = stops.map((_, i) => i + 1);
  const legsM = legs(d, best, backToStart);
  return {
    order: best.map((i) => i - 1),
    distanceM: sum(legsM),
    asGivenM: sum(legs(d, given, backToStart)),
    legsM,
  };
}

// The legs of the stops in `order` (indexes into stops) from start, as planRoute's legsM.
export function legsOf(start, stops, order) {
  return legs(matrix([start, ...stops]), order.map((i) => i + 1), false);
}

function matrix(points) {
  const size = points.length;
  const d = Array.from({ length: size }, () => new Float64Array(size));
  for (let i = 0; i < size; i++) {
    for (let j = i + 1; j < size; j++) {
      d[i][j] = d[j][i] = geodesicDistanceM(points[i].lat, points[i].lng, points[j].lat, points[j].lng);
    }
  }
  return d;
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

function legs(d, order, back) {
  const path = back && order.length ? [0, ...order, 0] : [0, ...order];
  const out = [];
  for (let i = 1; i < path.length; i++) out.push(d[path[i - 1]][path[i]]);
  return out;
}

function length(d, order, back) {
  return sum(legs(d, order, back));
}

// cost[mask * n + j]: the shortest path from the start through the stops in mask, ending at
// stop j + 1.
function heldKarp(d, n, back) {
  if (n === 0) return [];
  const full = (1 << n) - 1;
  const cost = new Float64Array((full + 1) * n).fill(Infinity);
  const came = new Int8Array((full + 1) * n).fill(-1);
  for (let j = 0; j < n; j++) cost[(1 << j) * n + j] = d[0][j + 1];
  for (let mask = 1; mask <= full; mask++) {
    for (let j = 0; j < n; j++) {
      const here = cost[mask * n + j];
      if (here === Infinity) continue;
      const dj = d[j + 1];
      for (let k = 0; k < n; k++) {
        const bit = 1 << k;
        if (mask & bit) continue;
        const through = here + dj[k + 1];
        const at = (mask | bit) * n + k;
        if (through < cost[at]) {
          cost[at] = through;
          came[at] = j;
        }
      }
    }
  }
  let j = 0;
  let bestEnd = Infinity;
  for (let k = 0; k < n; k++) {
    const end = cost[full * n + k] + (back ? d[k + 1][0] : 0);
    if (end < bestEnd) {
      bestEnd = end;
      j = k;
    }
  }
  const order = [];
  let mask = full;
  while (j !== -1) {
    order.push(j + 1);
    const before = came[mask * n + j];
    mask &= ~(1 << j);
    j = before;
  }
  return order.reverse();
}

// A small seeded generator (mulberry32): the same stops always get the same order.
function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function localSearch(d, n, back) {
  const random = seeded(SEED);
  let best = [];
  let bestLength = Infinity;
  for (let attempt = 0; attempt < RESTARTS; attempt++) {
    const order = attempt === 0 ? nearestNeighbour(d, n) : randomInsertion(d, n, random);
    while (twoOpt(d, order, back) || orOpt(d, order, back));
    const total = length(d, order, back);
    if (total < bestLength - 1e-9) {
      best = order;
      bestLength = total;
    }
  }
  return best;
}

function nearestNeighbour(d, n) {
  const left = new Set(Array.from({ length: n }, (_, i) => i + 1));
  const order = [];
  let here = 0;
  while (left.size) {
    let next = -1;
    for (const k of left) if (next === -1 || d[here][k] < d[here][next]) next = k;
    left.delete(next);
    order.push(next);
    here = next;
  }
  return order;
}

function randomInsertion(d, n, random) {
  const stops = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = stops.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [stops[i], stops[j]] = [stops[j], stops[i]];
  }
  const order = [];
  for (const k of stops) {
    const path = [0, ...order];
    let bestAt = order.length;
    let bestCost = d[path[path.length - 1]][k];
    for (let at = 0; at < order.length; at++) {
      const extra = d[path[at]][k] + d[k][path[at + 1]] - d[path[at]][path[at + 1]];
      if (extra < bestCost) {
        bestAt = at;
        bestCost = extra;
      }
    }
    order.splice(bestAt, 0, k);
  }
  return order;
}

// The node at position i of [start, ...order, (start)]; null past an open end.
function node(order, i, back) {
  if (i === 0) return 0;
  if (i <= order.length) return order[i - 1];
  return back ? 0 : null;
}

function edge(d, a, b) {
  return a === null || b === null ? 0 : d[a][b];
}

function twoOpt(d, order, back) {
  const n = order.length;
  for (let i = 1; i < n; i++) {
    const a = node(order, i - 1, back);
    const b = order[i - 1];
    for (let j = i + 1; j <= n; j++) {
      const c = order[j - 1];
      const e = node(order, j + 1, back);
      const delta = edge(d, a, c) + edge(d, b, e) - edge(d, a, b) - edge(d, c, e);
      if (delta < -1e-7) {
        const stretch = order.slice(i - 1, j).reverse();
        order.splice(i - 1, stretch.length, ...stretch);
        return true;
      }
    }
  }
  return false;
}

function orOpt(d, order, back) {
  const n = order.length;
  for (const size of [1, 2, 3]) {
    for (let i = 0; i + size <= n; i++) {
      const run = order.slice(i, i + size);
      const before = node(order, i, back);
      const after = node(order, i + size + 1, back);
      const removed = edge(d, before, run[0]) + edge(d, run[run.length - 1], after) - edge(d, before, after);
      const rest = [...order.slice(0, i), ...order.slice(i + size)];
      for (let at = 0; at <= rest.length; at++) {
        if (at === i) continue;
        const p = node(rest, at, back);
        const q = node(rest, at + 1, back);
        for (const piece of [run, [...run].reverse()]) {
          const added = edge(d, p, piece[0]) + edge(d, piece[piece.length - 1], q) - edge(d, p, q);
          if (added - removed < -1e-7) {
            order.splice(0, order.length, ...rest.slice(0, at), ...piece, ...rest.slice(at));
            return true;
          }
        }
      }
    }
  }
  return false;
}
