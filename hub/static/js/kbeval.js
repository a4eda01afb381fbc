// A draft's evaluation runs in the background: while its page says "pending", ask the hub
// every few seconds and reload the page once the scores (or an error) are in. A lost link
// only delays the next try; nothing is claimed on the page until the hub says so.
(function () {
  "use strict";
  var box = document.getElementById("eval");
  if (!box || box.dataset.state !== "pending") return;
  var delay = 3000;
  function check() {
    fetch(box.dataset.poll, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.state !== "pending") { window.location.reload(); return; }
        setTimeout(check, delay);
      })
      .catch(function () { setTimeout(check, Math.min(delay * 2, 15000)); });
  }
  setTimeout(check, delay);
})();
