// The job page's throughput chart (completed and failed per minute, last hour), drawn by
// the vendored uPlot from the series the page carries in data-series (no inline script).
"use strict";

(function () {
  const box = document.getElementById("job-chart");
  if (!box || !window.uPlot) return;
  const data = JSON.parse(box.dataset.series);
  const times = data.completed.map(function (_, i) { return data.start + 60 * i; });
  const options = {
    width: Math.max(320, box.clientWidth || 800),
    height: 220,
    series: [
      {},
      { label: "completed", stroke: "#2f8f4e", width: 2 },
      { label: "failed", stroke: "#c0392b", width: 2 },
    ],
    axes: [{}, { label: "per minute" }],
  };
  const chart = new uPlot(options, [times, data.completed, data.failed], box);
  box.dataset.drawn = "1";
  window.addEventListener("resize", function () {
    chart.setSize({ width: Math.max(320, box.clientWidth), height: 220 });
  });
})();
