// A list that holds only the rows on screen: a big territory's 10,000 accounts are 10,000
// rows to scroll through, but about 30 nodes. Every row has one height (css: `.virtual`),
// measured from a drawn row, again when the width or the text size changes; the list's
// padding stands for the rows above and below, and rows that leave the window are removed.
// Each row says where it stands (aria-posinset/-setsize) for screen readers.

const OVERSCAN = 10; // rows kept beyond each edge of the screen
const FIRST = 20; // rows drawn before the list is on the page (before it can be measured)

const shown = new Set(); // the lists on the page, redrawn as it scrolls
let frame = 0;
function redrawSoon() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    for (const list of shown) list.draw();
  });
}
addEventListener("scroll", redrawSoon, { passive: true });
addEventListener("resize", () => {
  for (const list of shown) list.height = 0; // measured again
  redrawSoon();
});

// `list`: an empty <ul>; `row(item, i)`: the <li> of an item. Answers {show(items), redraw()}:
// show a new set of items (from the first), or draw the rows shown again (a row's state
// changed), keeping the scroll.
export function virtualList(list, row) {
  list.classList.add("virtual");
  let items = [];
  let first = 0; // items[first, last) are drawn, in order
  let last = 0;
  const state = { height: 0, draw };
  let font = ""; // the text size the height was measured at

  const node = (i) => {
    const li = row(items[i], i);
    li.setAttribute("aria-posinset", String(i + 1));
    li.setAttribute("aria-setsize", String(items.length));
    return li;
  };

  function measure() {
    list.style.removeProperty("--row-h");
    const probe = list.firstElementChild || list.appendChild(node(0));
    state.height = probe.getBoundingClientRect().height || 48;
    list.style.setProperty("--row-h", `${state.height}px`);
  }

  function fill(from, to) {
    list.replaceChildren(...Array.from({ length: to - from }, (_, k) => node(from + k)));
    first = from;
    last = to;
  }

  function draw() {
    if (!list.isConnected) {
      shown.delete(state);
      if (last === 0) fill(0, Math.min(items.length, FIRST)); // drawn once, then measured
      else return;
      list.style.paddingBottom = `${(items.length - last) * 48}px`;
      requestAnimationFrame(() => list.isConnected && (shown.add(state), draw()));
      return;
    }
    shown.add(state);
    if (!items.length) {
      fill(0, 0);
      list.style.padding = "0";
      return;
    }
    const size = getComputedStyle(document.documentElement).fontSize;
    if (!state.height || size !== font) {
      font = size;
      measure();
    }
    const h = state.height;
    const top = list.getBoundingClientRect().top;
    const from = Math.max(0, Math.min(items.length, Math.floor(-top / h) - OVERSCAN));
    const to = Math.max(from, Math.min(items.length, Math.ceil((innerHeight - top) / h) + OVERSCAN));
    if (from >= last || to <= first || last === 0) fill(from, to);
    else {
      // Keep the rows still in the window (their focus, their ticked boxes), add the new ones.
      for (; first < from; first += 1) list.firstElementChild.remove();
      for (; last > to; last -= 1) list.lastElementChild.remove();
      if (from < first) list.prepend(...Array.from({ length: first - from }, (_, k) => node(from + k)));
      if (to > last) list.append(...Array.from({ length: to - last }, (_, k) => node(last + k)));
      first = from;
      last = to;
    }
    list.style.paddingTop = `${first * h}px`;
    list.style.paddingBottom = `${(items.length - last) * h}px`;
  }

  return {
    show(next) {
      items = next;
      first = last = 0;
      list.replaceChildren();
      draw();
    },
    redraw() {
      const [from, to] = [first, last];
      fill(from, to);
      draw();
    },
  };
}
