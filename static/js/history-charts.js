/* The device page's history charts (uPlot, vendored). The first range's points come in a
   json_script tag; the range buttons ask GET /api/v1/devices/{id}/history?range=... .
   No inline script: the Content-Security-Policy forbids it. */
(function () {
  "use strict";

  var GB = 1024 * 1024 * 1024;
  var SPANS = { "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400 };
  var charts = [];

  function series(points, key) {
    var scale = key.indexOf("_bytes") > 0 ? GB : 1;
    return points.map(function (point) {
      var value = point[key];
      return value === null || value === undefined ? null : value / scale;
    });
  }

  function width(element) {
    return Math.max(240, element.clientWidth || element.parentNode.clientWidth || 400);
  }

  function draw(section, points, range) {
    // the time axis always shows the whole range chosen (with one reading, uPlot would
    // otherwise stretch it over years)
    var now = Date.now() / 1000;
    var xScale = { time: true, range: [now - (SPANS[range] || SPANS["24h"]), now] };
    charts.forEach(function (chart) { chart.destroy(); });
    charts = [];
    var times = points.map(function (point) { return Date.parse(point.time) / 1000; });
    var empty = section.querySelector("[data-history-empty]");
    if (empty) empty.hidden = points.length > 0;
    var temperatureBox = section.querySelector("[data-temperature]");
    var hasTemperature = points.some(function (point) { return point.temperature_c !== null; });
    if (temperatureBox) temperatureBox.hidden = !hasTemperature;
    section.querySelectorAll("[data-chart]").forEach(function (element) {
      var key = element.getAttribute("data-chart");
      if (key === "temperature_c" && !hasTemperature) return;
      var unit = element.getAttribute("data-unit") || "";
      var options = {
        width: width(element),
        height: 160,
        legend: { show: true },
        scales: key === "cpu_percent" ? { x: xScale, y: { range: [0, 100] } } : { x: xScale },
        series: [
          {},
          {
            label: element.parentNode.querySelector(".label").textContent,
            stroke: "#2563eb",
            fill: "rgba(37, 99, 235, 0.08)",
            width: 1.5,
            spanGaps: false,
            value: function (self, value) {
              return value === null ? "–" : value.toFixed(unit === "GB" ? 2 : 1) + (unit ? " " + unit : "");
            },
          },
        ],
        axes: [{}, { size: 50 }],
      };
      charts.push(new window.uPlot(options, [times, series(points, key)], element));
    });
    var fallback = document.querySelector("[data-history-fallback]");
    if (fallback) fallback.hidden = true;
  }

  function load(section, range) {
    var url = section.getAttribute("data-history-url") + "?range=" + encodeURIComponent(range);
    var note = section.querySelector("[data-history-note]");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (body) { draw(section, body.points, range); })
      .catch(function () {
        if (note) note.textContent = "Could not load this range just now. Try again in a moment; if it keeps failing, reload the page.";
      });
  }

  function start() {
    var section = document.querySelector("[data-history-charts]");
    if (!section || !window.uPlot) return;
    var initial = document.getElementById("history-points");
    draw(section, initial ? JSON.parse(initial.textContent) : [], section.getAttribute("data-initial-range"));
    section.addEventListener("click", function (event) {
      var button = event.target.closest("[data-range]");
      if (!button) return;
      section.querySelectorAll("[data-range]").forEach(function (other) {
        other.classList.toggle("active", other === button);
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
      load(section, button.getAttribute("data-range"));
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
