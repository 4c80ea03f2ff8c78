// Charts drawn by the vendored uPlot from series the pages carry in data-series attributes
// (no inline script): the job page's throughput over the last hour, and the overview's
// per-job "last 15 min" lines. Both follow the live feed: live.js swaps in a new #live (the
// existing charts move into the new cells and take the new numbers) or a new job series.
"use strict";

(function () {
  if (!window.uPlot) return;

  function seriesOf(data) {
    const times = data.completed.map(function (_, i) { return data.start + 60 * i; });
    return [times, data.completed, data.failed];
  }

  const box = document.getElementById("job-chart");
  if (box) {
    const ink = getComputedStyle(document.body).color; // the axes follow dark mode
    const options = {
      width: Math.max(320, box.clientWidth || 800),
      height: 220,
      series: [
        {},
        { label: "completed", stroke: "#2f8f4e", width: 2 },
        { label: "failed", stroke: "#c0392b", width: 2 },
      ],
      axes: [{ stroke: ink }, { label: "per minute", stroke: ink }],
    };
    const chart = new uPlot(options, seriesOf(JSON.parse(box.dataset.series)), box);
    box.dataset.drawn = "1";
    // live.js puts each feed update's series here; the same chart takes them.
    new MutationObserver(function () {
      const data = JSON.parse(box.dataset.series);
      chart.setData(seriesOf(data));
      const total = data.completed.concat(data.failed).reduce(function (a, b) { return a + b; }, 0);
      box.dataset.drawnTotal = String(total);
    }).observe(box, { attributes: true, attributeFilter: ["data-series"] });
    window.addEventListener("resize", function () {
      chart.setSize({ width: Math.max(320, box.clientWidth), height: 220 });
    });
  }

  const live = document.getElementById("live");
  if (!live) return;
  const sparks = new Map();
  const sparkOptions = {
    width: 150,
    height: 28,
    legend: { show: false },
    cursor: { show: false },
    select: { show: false },
    scales: {
      x: { time: false },
      y: { range: function (_, __, max) { return [0, Math.max(1, max)]; } },
    },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: "#3867d6", width: 1.5, fill: "rgba(56, 103, 214, 0.12)" }],
  };

  function drawSparks() {
    const seen = new Set();
    live.querySelectorAll("[data-spark]").forEach(function (cell) {
      const name = cell.dataset.spark;
      const values = JSON.parse(cell.dataset.series);
      const minutes = values.map(function (_, i) { return i - values.length + 1; });
      let chart = sparks.get(name);
      if (chart) {
        cell.appendChild(chart.root);
        chart.setData([minutes, values]);
      } else {
        chart = new uPlot(sparkOptions, [minutes, values], cell);
        sparks.set(name, chart);
      }
      cell.dataset.drawn = values.join(",");
      seen.add(name);
    });
    sparks.forEach(function (chart, name) {
      if (!seen.has(name)) { chart.destroy(); sparks.delete(name); }
    });
  }

  drawSparks();
  new MutationObserver(drawSparks).observe(live, { childList: true });
})();
