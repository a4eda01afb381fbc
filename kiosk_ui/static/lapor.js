/* Lapor: one question per step, photo from the kiosk camera, ticket only after the commit. */
(function () {
  "use strict";
  var T = JSON.parse(document.getElementById("lapor-texts").textContent);
  var STEPS = ["category", "what", "where", "when", "photo", "contact", "review"];
  var FIELD_STEP = { category: 0, description: 1, location: 2, occurred: 3, photo: 4, name: 5, phone: 5, consent: 5 };
  var $ = function (id) { return document.getElementById(id); };
  var state = { step: 0, category: "", where: "here", when: "0", photo: null, sending: false };
  var stream = null;

  var sections = {};
  document.querySelectorAll(".step").forEach(function (s) { sections[s.dataset.step] = s; });
  var dots = document.querySelectorAll(".progress-dots i");

  function setError(text) {
    var box = $("form-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function fieldMessage(fields) {
    var names = fields.map(function (f) { return T.field_names[f] || f; }).join(", ");
    return T.fix_fields.replace("{fields}", names);
  }

  function show(name) {
    Object.keys(sections).forEach(function (k) { sections[k].hidden = k !== name; });
    if (window.PoskoKiosk && window.PoskoKiosk.closeKeyboard) window.PoskoKiosk.closeKeyboard();
    window.scrollTo(0, 0);
  }

  function goto(i) {
    setError("");
    if (STEPS[state.step] === "photo" && STEPS[i] !== "photo") stopCamera();
    state.step = i;
    var name = STEPS[i];
    show(name);
    $("progress").hidden = false;
    $("progress-text").textContent = T.step_of.replace("{n}", i + 1).replace("{total}", STEPS.length);
    dots.forEach(function (d, j) { d.classList.toggle("done", j <= i); });
    $("back").hidden = false;
    $("next").hidden = name === "review" || name === "photo" || (name === "category" && !state.category);
    $("submit").hidden = name !== "review";
    $("finish").hidden = true;
    $("retry").hidden = true;
    if (name === "photo") startCamera();
    if (name === "review") fillReview();
  }

  function valid(name) {
    if (name === "what" && !$("description").value.trim()) { setError(fieldMessage(["description"])); return false; }
    if (name === "where" && state.where === "other" && !$("location").value.trim()) { setError(fieldMessage(["location"])); return false; }
    if (name === "contact" && ($("name").value.trim() || $("phone").value.trim()) && !$("consent").checked) {
      setError(T.need_consent); return false;
    }
    return true;
  }

  $("next").addEventListener("click", function () {
    if (valid(STEPS[state.step])) goto(state.step + 1);
  });
  $("back").addEventListener("click", function () {
    if (state.step === 0) { window.location.href = "/"; return; }
    goto(state.step - 1);
  });

  /* category: one tap chooses and moves on */
  document.querySelectorAll(".cat").forEach(function (b) {
    b.addEventListener("click", function () {
      state.category = b.dataset.value;
      document.querySelectorAll(".cat").forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
      goto(1);
    });
  });

  document.querySelectorAll(".where").forEach(function (b) {
    b.addEventListener("click", function () {
      state.where = b.dataset.value;
      document.querySelectorAll(".where").forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
      $("location").hidden = state.where !== "other";
      if (state.where === "other") $("location").focus();
    });
  });

  document.querySelectorAll(".when").forEach(function (b) {
    b.addEventListener("click", function () {
      state.when = b.dataset.value;
      document.querySelectorAll(".when").forEach(function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
    });
  });

  /* photo through the browser: getUserMedia, take, retake, use or skip */
  var video = $("video"), snap = $("snapshot");
  function photoButtons(taken) {
    $("take").hidden = taken || !stream;
    $("retake").hidden = !taken;
    $("use").hidden = !taken;
    video.hidden = taken;
    snap.hidden = !taken;
  }
  function startCamera() {
    if (state.photo) { photoButtons(true); return; }
    photoButtons(false);
    if (stream) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { noCamera(); return; }
    navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false })
      .then(function (s) {
        if (STEPS[state.step] !== "photo") { s.getTracks().forEach(function (t) { t.stop(); }); return; }
        stream = s;
        video.srcObject = s;
        $("no-camera").hidden = true;
        photoButtons(!!state.photo);
      })
      .catch(noCamera);
  }
  function noCamera() {
    stream = null;
    video.hidden = true;
    $("no-camera").hidden = false;
    $("take").hidden = true;
    /* the hint names the Take photo button: with no camera it would point at nothing */
    $("photo-hint").hidden = true;
    $("photo-hint-none").hidden = false;
  }
  function stopCamera() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    video.srcObject = null;
  }
  $("take").addEventListener("click", function () {
    if (!video.videoWidth) return;
    var canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob(function (blob) {
      if (!blob) return;
      state.photo = blob;
      if (snap.src) URL.revokeObjectURL(snap.src);
      snap.src = URL.createObjectURL(blob);
      photoButtons(true);
    }, "image/jpeg", 0.9);
  });
  $("retake").addEventListener("click", function () {
    state.photo = null;
    photoButtons(false);
    if (!stream) startCamera();
  });
  $("use").addEventListener("click", function () { goto(5); });
  $("skip-photo").addEventListener("click", function () {
    state.photo = null;
    photoButtons(false);
    goto(5);
  });

  function fillReview() {
    var r = {};
    document.querySelectorAll("#review dd").forEach(function (dd) { r[dd.dataset.r] = dd; });
    r.category.textContent = T.categories[state.category] || "";
    r.description.textContent = $("description").value.trim();
    r.where.textContent = state.where === "here" ? T.where_here : $("location").value.trim();
    r.when.textContent = T.when[state.when] || "";
    r.photo.textContent = state.photo ? T.with_photo : T.none;
    var contact = [$("name").value.trim(), $("phone").value.trim()].filter(Boolean).join(", ");
    r.contact.textContent = contact || T.none;
  }

  function fail(message) {
    show("failed");
    $("failure-text").textContent = message;
    $("progress").hidden = true;
    $("back").hidden = true;
    $("next").hidden = true;
    $("submit").hidden = true;
    $("finish").hidden = false;
    $("retry").hidden = false; /* what was typed is still here: after the officer helps, send again */
  }
  $("retry").addEventListener("click", function () { goto(STEPS.indexOf("review")); });

  $("submit").addEventListener("click", function () {
    if (state.sending) return;
    state.sending = true;
    var btn = $("submit");
    btn.disabled = true;
    btn.querySelector("span").textContent = T.sending;
    var form = new FormData();
    form.append("category", state.category);
    form.append("description", $("description").value.trim());
    form.append("where", state.where);
    form.append("location", state.where === "other" ? $("location").value.trim() : "");
    form.append("when_offset_min", state.when);
    form.append("name", $("name").value.trim());
    form.append("phone", $("phone").value.trim());
    if ($("consent").checked) form.append("consent", "1");
    if (state.photo) form.append("photo", state.photo, "photo.jpg");
    fetch("/api/lapor", { method: "POST", body: form })
      .then(function (r) { return r.json().then(function (data) { return { status: r.status, data: data }; }); })
      .then(function (res) {
        var d = res.data;
        if (d.ok) { done(d); return; }
        if (d.error === "fields") { goto(Math.min.apply(null, d.fields.map(function (f) { return FIELD_STEP[f] || 0; }))); setError(d.message); }
        else if (d.error === "blocked") { goto(5); setError(d.message); }
        else fail(d.message || T.save_failed);
      })
      .catch(function () { fail(T.save_failed); })
      .then(function () {
        state.sending = false;
        btn.disabled = false;
        btn.querySelector("span").textContent = T.submit;
      });
  });

  function done(d) {
    stopCamera();
    show("done");
    $("ticket").textContent = d.ticket;
    $("pin").textContent = d.pin;
    $("qr").innerHTML = d.qr_svg; /* made by the kiosk's own server from the ticket text */
    /* saved here is all that is true now; "diterima" only once the hub has it */
    $("saved-offline").hidden = false;
    followReport(d.id);
    $("progress").hidden = true;
    $("back").hidden = true;
    $("next").hidden = true;
    $("submit").hidden = true;
    $("finish").hidden = false;
    /* what was typed is not needed any more: clear it now, not only at the idle reset */
    ["description", "location", "name", "phone"].forEach(function (id) { $(id).value = ""; });
    $("consent").checked = false;
    state.photo = null;
  }

  function followReport(id) {
    fetch("/api/laporan/" + encodeURIComponent(id), { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        $("saved-offline").hidden = s.state !== "waiting";
        $("saved-parked").hidden = s.state !== "parked";
        if (s.state === "received") {
          if (window.PoskoKiosk) window.PoskoKiosk.showStatus(true);  /* the hub just answered */
          var box = $("saved-received");
          box.querySelector("span").textContent = s.received_text;
          box.hidden = false;
        }
        return s.state;
      })
      .catch(function () { return null; })
      .then(function (state) {
        if (state !== "received" && !sections.done.hidden) setTimeout(function () { followReport(id); }, 3000);
      });
  }

  goto(0);
})();
