// Me → "Territory map": with a territory pack on the server (docs/map.md), one tap keeps all
// its tiles (GET /api/tiles lists them) on the phone, four at a time, older packs' dropped.

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
      line.textContent = `Saving the territory map: ${total - urls.length} of ${total} tiles…`;
    }
  };
  await Promise.all([next(), next(), next(), next()]);
  line.dataset.state = "done";
  line.textContent = `${kept} tiles of the territory map are kept on this phone.`;
}

export function territorySlot() {
  const slot = h("div", { testid: "territory-slot" });
  mapConfig().then(({ tile_pack: pack }) => {
    if (!pack) return;
    const line = last && last.version === pack.version ? last.line
      : h("p", { class: "hint", testid: "territory-progress", dataset: { state: "none" } },
        `${pack.name || "The territory"}: ${pack.tiles} tiles, ${Math.ceil(pack.bytes / 1e6)} MB.`);
    const button = h("button", { type: "button", testid: "territory-keep" }, "Keep the territory map on this phone");
    button.addEventListener("click", () => {
      last = { version: pack.version, line };
      if (line.dataset.state !== "running") {
        keep(pack, line).catch(() => {
          line.dataset.state = "none";
          line.textContent = "No connection: try again with a signal.";
        });
      }
    });
    slot.append(section("Territory map", "me-territory",
      h("p", {}, "Street maps of your territory, for when there is no signal."), line, button));
  }, () => {});
  return slot;
}
