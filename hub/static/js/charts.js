// Charts page: reports per hour (48 h) and per category, drawn with the vendored Chart.js.
(function () {
  "use strict";
  var url = document.getElementById("charts-script").dataset.url;
  var palette = ["#1f4e8c", "#c0392b", "#e67e22", "#8e44ad", "#16a085", "#7f8c8d", "#2c3e50"];
  fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (d) {
    new Chart(document.getElementById("chart-hours"), {
      type: "bar",
      data: {labels: d.hours.labels, datasets: [{label: "Laporan", data: d.hours.counts, backgroundColor: "#1f4e8c"}]},
      options: {responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {legend: {display: false}},
        scales: {y: {beginAtZero: true, ticks: {precision: 0}}, x: {ticks: {maxRotation: 0, autoSkip: true, maxTicksLimit: 12}}}}
    });
    new Chart(document.getElementById("chart-categories"), {
      type: "doughnut",
      data: {labels: d.categories.labels, datasets: [{data: d.categories.counts, backgroundColor: palette}]},
      options: {responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {legend: {position: "bottom"}}}
    });
    document.body.dataset.charts = "ready";
  });
})();
