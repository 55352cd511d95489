// Installing the app: the browser's own prompt where it offers one (`beforeinstallprompt`,
// kept for a tap on Me's button), a few words on iPhones and iPads (Safari has no prompt).

import { t } from "./i18n.js";
import { h, section } from "./ui.js";

let offered = null; // the browser's deferred prompt
const slots = new Set();

export function startInstall() {
  window.addEventListener("beforeinstallprompt", (event) => {
    event.preventDefault(); // no mini-infobar: the rep asks from Me
    offered = event;
    redraw();
  });
  window.addEventListener("appinstalled", () => {
    offered = null;
    redraw();
  });
}

const installed = () =>
  matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
const ios = () => /iPhone|iPad|iPod/.test(navigator.userAgent);

function redraw() {
  for (const slot of slots) {
    if (slot.isConnected) slot.replaceChildren(...content());
    else slots.delete(slot);
  }
}

function content() {
  if (installed()) return [];
  if (offered) {
    return [section(t("Install the app"), "me-install",
      h("p", { class: "hint" }, t("Open fieldcrm from the home screen like any app; it works offline.")),
      h("button", { type: "button", class: "primary", testid: "install-button", onclick: install },
        t("Install fieldcrm")))];
  }
  if (ios()) {
    return [section(t("Install the app"), "me-install",
      h("p", { testid: "install-ios" }, t("In Safari, tap Share (the square with an arrow), then “Add to Home Screen”. fieldcrm then opens from the home screen and works offline.")))];
  }
  return [];
}

async function install() {
  const prompt = offered;
  if (!prompt) return;
  offered = null; // a prompt is shown once
  await prompt.prompt();
  await prompt.userChoice;
  redraw();
}

// Me's section: empty when installed, or when the browser offers no way we know of.
export function installSlot() {
  const slot = h("div", { testid: "install-slot" }, ...content());
  slots.add(slot);
  return slot;
}
