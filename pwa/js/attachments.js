// Photos and voice notes (SPEC section 13), loaded on demand. A photo is shrunk on the phone
// (at most 1,600 px, JPEG); each capture is named by its SHA-256, so the same bytes are
// kept and sent once. Bytes wait in the "blobs" store (pending: 1) until the server holds
// them; they go up after a sync has sent their rows, one at a time, and what a dropped
// connection stopped goes on at the next sync. A photo keeps a small thumbnail for the
// timeline; the full bytes come back from the server (HTTP-cached) when asked for.

import { t } from "./i18n.js";
import { read, write } from "./db.js";
import { newId } from "./records.js";
import { session } from "./session.js";
import { h, toast } from "./ui.js";

const SIDE = 1600;
const THUMB = 320;
const AUDIO = ["audio/webm", "audio/mp4", "audio/ogg"];

async function sha256(blob) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

// `source` drawn at most `side` px a side, as a JPEG.
async function jpeg(source, side) {
  const scale = Math.min(1, side / Math.max(source.width, source.height));
  const canvas = h("canvas", { width: Math.round(source.width * scale), height: Math.round(source.height * scale) });
  canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error(t("This picture could not be read.")))), "image/jpeg", 0.82));
}

async function item(blob, media_type, thumb = null) {
  return { sha256: await sha256(blob), blob, media_type, bytes: blob.size, thumb, pending: 1 };
}

export async function photoItem(file) {
  const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  try {
    return await item(await jpeg(bitmap, SIDE), "image/jpeg", await jpeg(bitmap, THUMB));
  } finally {
    bitmap.close();
  }
}

// "Add photo" (the phone's camera, or a picture) and "Voice note" (hidden where the browser
// cannot record); each capture is handed to `taken`.
export function captureButtons(taken) {
  const input = h("input", { type: "file", accept: "image/*", capture: "environment", multiple: true,
    class: "visually-hidden", testid: "attach-photo-input" });
  input.addEventListener("change", async () => {
    for (const file of input.files) {
      try {
        await taken(await photoItem(file));
      } catch {
        toast(t("This picture could not be read."));
      }
    }
    input.value = "";
  });
  const type = window.MediaRecorder && navigator.mediaDevices
    ? AUDIO.find((kind) => MediaRecorder.isTypeSupported(kind)) : null;
  let recorder = null;
  const voice = h("button", { type: "button", class: "button-link", testid: "attach-voice", hidden: !type },
    t("Voice note"));
  voice.addEventListener("click", async () => {
    if (recorder) return recorder.stop();
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      return toast(t("The microphone is not available."));
    }
    const parts = [];
    recorder = new MediaRecorder(stream, { mimeType: type });
    recorder.ondataavailable = (e) => parts.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((track) => track.stop());
      recorder = null;
      voice.textContent = t("Voice note");
      voice.dataset.recording = "no";
      if (parts.length) await taken(await item(new Blob(parts, { type }), type));
    };
    recorder.start();
    voice.textContent = t("Stop recording");
    voice.dataset.recording = "yes";
  });
  return h("div", { class: "actions", testid: "attach-buttons" },
    h("label", { class: "button-link", testid: "attach-photo" }, t("Add photo"), input), voice);
}

// What a form holds until it is saved: thumbnails and players of `items`.
export function preview(items) {
  return h("ul", { class: "attachments", testid: "attach-held" }, items.map((it) => {
    const photo = it.media_type.startsWith("image/");
    const el = h(photo ? "img" : "audio", photo ? { alt: t("Photo") } : { controls: true });
    el.src = URL.createObjectURL(photo ? it.thumb : it.blob);
    return h("li", { testid: "attach-held-item" }, el);
  }));
}

// Capture buttons and what they took, for a form that saves them with its record.
export function held() {
  const items = [];
  const list = h("div", {});
  const buttons = captureButtons((it) => {
    if (items.some((x) => x.sha256 === it.sha256)) return; // the same bytes: held once
    items.push(it);
    list.replaceChildren(preview(items));
  });
  return { items, el: h("fieldset", {}, h("legend", {}, t("Photos and voice notes")), buttons, list) };
}

// The rows and bytes that keep `items` on `parent` ({account_id, visit_id | note_id}).
export function attachmentWrites(items, parent, position) {
  const writes = items.map((it) => ({ table: "attachments", id: newId(), op: "upsert", fields: {
    ...parent, ...(position || {}), sha256: it.sha256, media_type: it.media_type, bytes: it.bytes,
    captured_at: new Date().toISOString() } }));
  return { writes, blobs: items.map(({ bytes, ...kept }) => kept) };
}

// Bytes: this phone's, else the server's (online).
async function bytesOf(row, thumb = false) {
  const kept = await read(["blobs"], (s) => s.blobs.get(row.sha256));
  const local = kept && ((thumb && kept.thumb) || kept.blob);
  if (local) return local;
  if (!row.uploaded || !navigator.onLine) return null;
  const res = await fetch(`/api/attachments/blobs/${row.sha256}`,
    { headers: { Authorization: `Bearer ${session().token}` }, credentials: "omit" }).catch(() => null);
  return res && res.ok ? res.blob() : null;
}

function show(el, blob) {
  if (blob) el.src = URL.createObjectURL(blob);
  return blob;
}

// The attachments of a timeline: thumbnails that open the photo, players for voice notes.
export function attachmentList(rows) {
  return h("ul", { class: "attachments" }, rows.map((row) => {
    const photo = row.media_type.startsWith("image/");
    const el = h(photo ? "img" : "audio", photo
      ? { alt: row.caption || t("Photo"), testid: "attachment-thumb", loading: "lazy" }
      : { controls: true, preload: "none", testid: "attachment-audio" });
    const li = h("li", { testid: "attachment", dataset: { id: row.id, uploaded: row.uploaded ? "yes" : "no" } }, el);
    bytesOf(row, photo).then((blob) => show(el, blob) || li.append(
      h("span", { class: "hint", testid: "attachment-waiting" }, navigator.onLine ? t("Not uploaded yet") : t("Needs a connection"))));
    if (photo) el.addEventListener("click", () => enlarge(row));
    return li;
  }));
}

async function enlarge(row) {
  const img = h("img", { alt: row.caption || t("Photo"), testid: "attachment-full" });
  const box = h("dialog", { class: "viewer", testid: "attachment-viewer" }, img,
    h("button", { type: "button", testid: "attachment-close", onclick: () => box.close() }, t("Close")));
  box.addEventListener("close", () => box.remove());
  document.body.append(box);
  box.showModal();
  if (!show(img, await bytesOf(row))) img.replaceWith(h("p", {}, t("The photo needs a connection.")));
}

let running = null;

// Send every waiting capture whose row the server has (not in the outbox any more); how
// many the server took.
export function uploadPending() {
  running = running || upload().finally(() => { running = null; });
  return running;
}

async function upload() {
  const [blobs, outbox, rows] = await read(["blobs", "outbox", "attachments"], (s) =>
    Promise.all([s.blobs.index("pending").getAll(1), s.outbox.getAll(), s.attachments.getAll()]));
  const unsent = new Set(outbox.map((e) => e.fields && e.fields.sha256));
  const named = new Set(rows.filter((r) => !r._deleted).map((r) => r.sha256));
  let sent = 0;
  for (const kept of blobs) {
    if (!named.has(kept.sha256)) {
      await write(["blobs"], (s) => s.blobs.delete(kept.sha256)); // its rows are gone
      continue;
    }
    if (unsent.has(kept.sha256) || !navigator.onLine || !session().token) continue;
    const res = await fetch(`/api/attachments/blobs/${kept.sha256}`, { method: "PUT", body: kept.blob,
      headers: { "Content-Type": kept.media_type, Authorization: `Bearer ${session().token}` },
      credentials: "omit" }).catch(() => null);
    if (!res) break; // the connection dropped: the next sync goes on from here
    if (res.ok || res.status === 422) {
      // Held now (or refused for good: keeping it would retry forever). The thumbnail stays.
      await write(["blobs"], (s) => s.blobs.put({ sha256: kept.sha256, media_type: kept.media_type,
        thumb: kept.thumb, pending: 0, refused: res.ok ? undefined : res.status }));
      sent += res.ok;
    }
  }
  return sent;
}
