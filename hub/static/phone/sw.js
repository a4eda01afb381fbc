// The phone app's service worker: keeps the app shell so the app opens without a network
// (and then says it is offline); talk itself needs the broker, so nothing else is cached.
const CACHE = "posko-hp-v3";
const SHELL = ["./", "../static/phone/ptt.js", "../static/phone/app.js", "../static/phone/emergency.js", "../static/phone/phone.css",
               "../static/phone/capture-worklet.js", "../static/vendor/mqttjs/mqtt.min.js",
               "./manifest.webmanifest"];

self.addEventListener("install", (ev) => {
  ev.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Network first (a new version is used at once), the cached shell when offline.
self.addEventListener("fetch", (ev) => {
  if (ev.request.method !== "GET") return;
  ev.respondWith(fetch(ev.request).then((r) => {
    if (r.ok && new URL(ev.request.url).origin === self.location.origin) {
      const copy = r.clone();
      caches.open(CACHE).then((c) => c.put(ev.request, copy));
    }
    return r;
  }).catch(() => caches.match(ev.request, { ignoreSearch: true })));
});
