// Every <time datetime> on the page, said the human way: "3 s ago", "in 5 min", or the
// date for old ones, with the reader's local time on hover. The server's text (ISO, UTC)
// stays for readers without JavaScript. New fragments (the live feed) are picked up too.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const JUST_NOW_S = 2; // within the clocks' and the network's jitter either way
  const OLD_AFTER_S = 7 * 24 * 3600; // past a week, a date says more than "9 d ago"
  const STEPS = [
    [60, 1, "s"],
    [3600, 60, "min"],
    [86400, 3600, "h"],
    [Infinity, 86400, "d"],
  ];
  const local = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "long" });
  const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });

  // The server's clock when it rendered the page: "ago" is measured on its clock, so a
  // browser whose clock is off does not show tasks finishing "in 2 min".
  const served = document.querySelector('meta[name="server-time"]');
  const skew = served ? Date.parse(served.content) - Date.now() : 0;
  const offset = Number.isFinite(skew) ? skew : 0;

  function relative(seconds) {
    const size = Math.abs(seconds);
    if (size < JUST_NOW_S) return "just now";
    const step = STEPS.find(function (s) { return size < s[0]; });
    const amount = Math.floor(size / step[1]);
    const text = amount + " " + step[2];
    return seconds >= 0 ? text + " ago" : "in " + text;
  }

  function humanize(element) {
    const at = Date.parse(element.getAttribute("datetime"));
    if (!Number.isFinite(at)) return;
    const seconds = Math.round((Date.now() + offset - at) / 1000);
    const when = new Date(at);
    element.textContent = Math.abs(seconds) > OLD_AFTER_S ? dateOnly.format(when) : relative(seconds);
    element.title = local.format(when);
  }

  function refresh(root) {
    root.querySelectorAll("time[datetime]").forEach(humanize);
  }

  refresh(document);
  setInterval(function () { refresh(document); }, REFRESH_MS);
  new MutationObserver(function (changes) {
    changes.forEach(function (change) {
      change.addedNodes.forEach(function (node) {
        if (node.nodeType !== Node.ELEMENT_NODE) return;
        if (node.matches("time[datetime]")) humanize(node);
        else refresh(node);
      });
    });
  }).observe(document.body, { childList: true, subtree: true });
})();
