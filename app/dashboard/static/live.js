// The page's live connection: one EventSource on the stream the page names (body's
// data-stream), its fragments swapped in as they come, and the header's indicator saying
// whether the numbers on screen are current: live, reconnecting…, or offline.
"use strict";

(function () {
  const url = document.body.dataset.stream;
  const badge = document.getElementById("live-state");
  if (!url || !badge || !window.EventSource) return;

  const STALE_MS = 5000; // the feed sends about once a second; this long silent is a drop
  const OFFLINE_MS = 30000; // this long without news, stop promising a quick return
  const RETRY_MS = [1000, 2000, 5000, 10000]; // after the browser itself gave up
  const LABELS = { live: "live", reconnecting: "reconnecting…", offline: "offline" };

  let source = null;
  let lastNews = Date.now(); // the page itself was fresh when served
  let dropped = false;
  let planned = false;
  let retries = 0;

  function show(state) {
    if (badge.dataset.state === state) return;
    badge.dataset.state = state;
    badge.textContent = LABELS[state];
  }

  function judge() {
    const quiet = Date.now() - lastNews;
    if (quiet > OFFLINE_MS) show("offline");
    else if (dropped || quiet > STALE_MS) show("reconnecting");
    else show("live");
  }

  function heard() {
    lastNews = Date.now();
    dropped = false;
    retries = 0;
    judge();
  }

  const swaps = {
    overview: function (data) {
      const live = document.getElementById("live");
      if (live) live.innerHTML = data.html;
    },
    job: function (data) {
      const live = document.getElementById("job-live");
      if (live) live.innerHTML = data.html;
      const chart = document.getElementById("job-chart");
      if (chart) chart.dataset.series = JSON.stringify(data.chart);
    },
    pulse: function () {},
  };

  function connect() {
    source = new EventSource(url);
    Object.keys(swaps).forEach(function (name) {
      source.addEventListener(name, function (event) {
        swaps[name](JSON.parse(event.data));
        heard();
      });
    });
    // The server ends each stream after a few seconds on purpose and says so first:
    // the reconnect that follows is routine, not a dropped connection.
    source.addEventListener("end", function () { planned = true; });
    source.onerror = function () {
      if (planned && source.readyState === EventSource.CONNECTING) {
        planned = false;
        return;
      }
      planned = false;
      dropped = true;
      judge();
      if (source.readyState === EventSource.CLOSED) {
        // An answer that is not a stream (a proxy's 502, a restart): the browser will not
        // retry by itself, so try again later, less often each time.
        const wait = RETRY_MS[Math.min(retries, RETRY_MS.length - 1)];
        retries += 1;
        setTimeout(connect, wait);
      }
    };
  }

  badge.hidden = false;
  connect();
  setInterval(judge, 1000);
  window.addEventListener("pagehide", function () { if (source) source.close(); });
})();
