// Me → "Territory map": with a territory pack on the server (docs/map.md), one tap keeps all
// its tiles (GET /api/tiles lists them) on the phone, four at a time, older packs' dropped.

import { formatNumber, t, tn } from "../i18n.js";
import { apiFetch } from "../api.js";
import { packCacheName, packTile } from "../basemap.js";
import { mapConfig } from "../map.js";
import { session } from "../session.js";
import { h, section } from "../ui.js";

// The last download's progress line, kept when the screen redraws.
let last = null;

async function keep(pack, line) {
  line.dataset.state = "running";
  for (const name of await caches.keys()) {
    if (name.startsWith("fieldcrm-pack-") && name !== packCacheName(pack)) await caches.delete(name);
  }
  const listed = await apiFetch("/api/tiles", { token: session().token, timeoutMs: 60_000 });
  const urls = ((listed.data && listed.data.tiles) || []).map(([z, x, y]) => pack.url.replace("{z}", z).replace("{x}", x).replace("{y}", y));
  const total = urls.length;
  let kept = 0;
  const next = async () => {
    for (let url = urls.pop(); url; url = urls.pop()) {
      if (await packTile(pack, url).catch(() => null)) kept += 1;
      line.textContent = t("Saving the territory map: {done} of {total} tiles…", { done: formatNumber(total - urls.length), total: formatNumber(total) });
    }
  };
  await Promise.all([next(), next(), next(), next()]);
  line.dataset.state = "done";
  line.textContent = tn("{n} tile of the territory map is kept on this phone.", "{n} tiles of the territory map are kept on this phone.", kept);
}

export function territorySlot() {
  const slot = h("div", { testid: "territory-slot" });
  mapConfig().then(({ tile_pack: pack }) => {
    if (!pack) return;
    const line = last && last.version === pack.version ? last.line
      : h("p", { class: "hint", testid: "territory-progress", dataset: { state: "none" } },
        t("{name}: {tiles} tiles, {mb} MB.", { name: pack.name || t("The territory"), tiles: formatNumber(pack.tiles), mb: formatNumber(Math.ceil(pack.bytes / 1e6)) }));
    const button = h("button", { type: "button", testid: "territory-keep" }, t("Keep the territory map on this phone"));
    button.addEventListener("click", () => {
      last = { version: pack.version, line };
      if (line.dataset.state !== "running") {
        keep(pack, line).catch(() => {
          line.dataset.state = "none";
          line.textContent = t("No connection: try again with a signal.");
        });
      }
    });
    slot.append(section(t("Territory map"), "me-territory",
      h("p", {}, t("Street maps of your territory, for when there is no signal.")), line, button));
  }, () => {});
  return slot;
}
