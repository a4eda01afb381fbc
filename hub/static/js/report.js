// The report page: v marks it verified (as on the queue); the public-note template picker
// shows the free-text box only for "Tulis sendiri…".
(function () {
  "use strict";
  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.ctrlKey || e.metaKey || e.altKey) return;
    var verify = document.querySelector('button[data-state="diverifikasi"]');
    if (e.key === "v" && verify) { e.preventDefault(); verify.click(); }
  });
  var picker = document.getElementById("note-template");
  var text = document.getElementById("note-text");
  function sync() { if (picker && text) text.hidden = picker.value !== "sendiri"; }
  if (picker) picker.addEventListener("change", sync);
  sync();
})();
