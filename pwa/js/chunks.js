// Long lists drawn as they scroll into view: a big territory's Today can hold thousands of
// due tasks, and drawing them all took seconds on a phone. The first rows are drawn at once,
// the next ones each time the list's end comes within 600 px of the screen.

import { h } from "./ui.js";

const FIRST = 30;
const MORE = 50;
const observers = new WeakMap(); // list -> the IntersectionObserver of its current rows

// Fill `list` with `row(item)` for each item, `first` now and `more` at a time after.
// Answers a function that draws every row left (before ticking them all, say).
export function drawRows(list, items, row, { first = FIRST, more = MORE } = {}) {
  if (observers.has(list)) observers.get(list).disconnect();
  let drawn = 0;
  const end = h("li", { class: "list-more", "aria-hidden": "true" });
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) draw(more);
  }, { rootMargin: "600px 0px" });
  observers.set(list, observer);
  function draw(n) {
    const next = items.slice(drawn, drawn + n);
    drawn += next.length;
    end.before(...next.map(row));
    if (drawn >= items.length) {
      observer.disconnect();
      end.remove();
    }
  }
  list.replaceChildren(end);
  draw(first);
  if (drawn < items.length) observer.observe(end);
  return () => draw(items.length - drawn);
}
