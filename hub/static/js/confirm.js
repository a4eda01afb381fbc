// Destructive actions ask first and say what follows: a form with data-confirm opens the
// page's dialog with that text; a reject form whose reason is the prank reason shows
// data-confirm-prank too (e.g. that this rejection blocks the phone number).
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog) return;
  var text = dialog.querySelector(".confirm-text");
  var extra = dialog.querySelector(".confirm-extra");
  var ok = dialog.querySelector("button.confirm-ok");
  var pending = null;
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset.confirm || form.dataset.confirmed === "1") return;
    e.preventDefault();
    if (!form.reportValidity()) return;
    var reason = form.querySelector("select[name=reason]");
    text.textContent = form.dataset.confirm;
    var prank = reason && form.dataset.prankReason && reason.value === form.dataset.prankReason;
    extra.textContent = prank ? form.dataset.confirmPrank : "";
    extra.hidden = !prank;
    ok.textContent = form.dataset.confirmOk || "Ya, lanjutkan";
    pending = form;
    dialog.showModal();
  }, true);
  dialog.addEventListener("close", function () {
    if (dialog.returnValue === "ok" && pending) {
      pending.dataset.confirmed = "1";
      pending.requestSubmit();
    }
    pending = null;
  });
})();
