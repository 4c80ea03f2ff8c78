// The action buttons (cancel, retry; pause, resume), sent with the page's CSRF token.
// No framework, no build step; live updates are live.js's.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const flash = document.getElementById("flash");

  function say(text, isError) {
    flash.textContent = text;
    flash.className = isError ? "flash error" : "flash";
    flash.hidden = false;
  }

  document.addEventListener("click", async function (event) {
    const button = event.target.closest("button.act");
    if (!button) return;
    button.disabled = true;
    const job = button.dataset.job;
    const url = job
      ? "/dashboard/jobs/" + encodeURIComponent(job) + "/" + button.dataset.action
      : "/dashboard/tasks/" + button.dataset.task + "/" + button.dataset.action;
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf ? csrf.content : "" },
    });
    if (response.ok) {
      const body = await response.json();
      if (job) say("Job " + body.full_name + (body.paused ? " is paused" : " is resumed"), false);
      else say("Task " + body.id.slice(0, 8) + " is now " + body.status, false);
      if (button.dataset.reload) window.location.reload();
    } else {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      say(button.dataset.action + " refused: " + detail, true);
      button.disabled = false;
    }
  });
})();
