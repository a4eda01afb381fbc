// The map with no internet: Leaflet from the hub, tiles from the hub's MBTiles file or, when
// there is none, a plain background; reports coloured by severity, poskos with their names.
(function () {
  "use strict";
  var box = document.getElementById("map");
  if (!box || !window.L) return;
  var config = JSON.parse(box.dataset.config);
  var map = L.map(box, {minZoom: config.tiles ? config.minzoom : 3, maxZoom: config.tiles ? config.maxzoom : 19,
                        attributionControl: Boolean(config.attribution)})
    .setView(config.center, config.tiles ? Math.max(config.minzoom, Math.min(13, config.maxzoom)) : 12);
  // No link out of the command center: Leaflet's own prefix would point at its web site.
  if (map.attributionControl) { map.attributionControl.setPrefix(false); }
  if (config.tiles) {
    var layer = L.tileLayer(config.tiles, {minZoom: config.minzoom, maxZoom: config.maxzoom,
                                           attribution: config.attribution || ""});
    layer.on("tileload", function () {
      box.dataset.tilesLoaded = String(Number(box.dataset.tilesLoaded || 0) + 1);
    });
    layer.addTo(map);
  }
  var colours = {high: "#d92d20", medium: "#dc6803", normal: "#475467"};
  function esc(text) { var d = document.createElement("div"); d.textContent = text; return d.innerHTML; }
  fetch(config.data, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (data) {
    var points = [];
    data.poskos.forEach(function (p) {
      var marker = L.marker([p.lat, p.lon], {
        icon: L.divIcon({className: "posko-icon", html: "▲", iconSize: [18, 18]}), title: p.name
      }).addTo(map);
      marker.bindTooltip(p.name, {permanent: true, direction: "right", className: "posko-label"});
      points.push([p.lat, p.lon]);
    });
    data.reports.forEach(function (r) {
      var dot = L.circleMarker([r.lat, r.lon], {
        radius: r.severity === "high" ? 9 : 7, color: "#fff", weight: 2,
        fillColor: colours[r.severity] || colours.normal, fillOpacity: 0.95, className: "report-dot sev-dot-" + r.severity
      }).addTo(map);
      dot.bindPopup('<a href="' + esc(r.url) + '"><b>' + esc(r.ticket) + "</b></a> · " + esc(r.severity_label) +
                    "<br>" + esc(r.category_label) + " · " + esc(r.state_label) + "<br>" + esc(r.location) +
                    "<br>" + esc(r.received_local) + " " + esc(document.body.dataset.tz || ""));
      points.push([r.lat, r.lon]);
    });
    // Open phone emergencies: red, on top, with the accuracy circle and a label that stays.
    var focus = null;
    (data.alerts || []).forEach(function (a) {
      // The trail while the emergency is open, oldest to newest (the dot is the newest).
      if (a.track && a.track.length > 1) {
        L.polyline(a.track, {color: "#d92d20", weight: 4, opacity: 0.8, dashArray: "6 6",
                             className: "alert-trail", interactive: false}).addTo(map);
        a.track.forEach(function (p, i) {
          if (i < a.track.length - 1) {
            L.circleMarker(p, {radius: 4, color: "#d92d20", weight: 1, fillColor: "#fff", fillOpacity: 1,
                               className: "alert-trail-point", interactive: false}).addTo(map);
          }
        });
      }
      if (a.accuracy_m) {
        L.circle([a.lat, a.lon], {radius: a.accuracy_m, color: "#d92d20", weight: 1, fillOpacity: 0.12,
                                  interactive: false}).addTo(map);
      }
      var mark = L.circleMarker([a.lat, a.lon], {radius: 11, color: "#fff", weight: 3, fillColor: "#d92d20",
                                                 fillOpacity: 1, className: "alert-dot"}).addTo(map);
      mark.bindTooltip("DARURAT " + a.name + (a.group ? " · " + a.group : ""),
                       {permanent: true, direction: "right", className: "alert-label"});
      mark.bindPopup("<b>DARURAT</b> " + esc(a.name) + " (" + esc(a.unit) + ")" + (a.group ? "<br>Grup " + esc(a.group) : "") +
                     "<br>" + esc(a.location) + "<br>diterima " + esc(a.received_local) + " " + esc(document.body.dataset.tz || ""));
      // Focused: the newest position, with the whole trail in view when the phone moved.
      if (a.id === config.focus) focus = a.track && a.track.length > 1 ? a.track.concat([[a.lat, a.lon]]) : [a.lat, a.lon];
      points.push([a.lat, a.lon]);
    });
    box.dataset.alerts = String((data.alerts || []).length);
    // No animation: the view is where the points are at once (and screenshots are steady).
    if (focus && Array.isArray(focus[0])) map.fitBounds(focus, {padding: [60, 60], maxZoom: 16, animate: false});
    else if (focus) map.setView(focus, 16, {animate: false});
    else if (points.length > 1) map.fitBounds(points, {padding: [40, 40], maxZoom: 15, animate: false});
    else if (points.length === 1) map.setView(points[0], 14, {animate: false});
    document.getElementById("map-count").textContent =
      data.reports.length + " laporan berkoordinat, " + data.poskos.length + " posko" +
      ((data.alerts || []).length ? ", " + data.alerts.length + " darurat ponsel terbuka" : "");
    box.dataset.reports = String(data.reports.length);
    box.dataset.poskos = String(data.poskos.length);
    box.dataset.ready = "1";
  });
})();
