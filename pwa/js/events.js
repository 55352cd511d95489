// One in-page event bus, echoed to the app's other tabs so they refresh too.
//   "data"  : local rows changed (a local write or a pulled page)
//   "sync"  : the sync status changed (detail: the status object)
//   "session": signed in or out

export const bus = new EventTarget();

const channel = "BroadcastChannel" in globalThis ? new BroadcastChannel("fieldcrm") : null;

export function emit(type, detail = null, { local = false } = {}) {
  bus.dispatchEvent(new CustomEvent(type, { detail }));
  if (channel && !local && type === "data") channel.postMessage({ type });
}

export function on(type, handler) {
  const listener = (event) => handler(event.detail);
  bus.addEventListener(type, listener);
  return () => bus.removeEventListener(type, listener);
}

if (channel) {
  channel.onmessage = (event) => {
    if (event.data && event.data.type === "data") emit("data", { remote: true }, { local: true });
  };
}
