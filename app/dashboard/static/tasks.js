// The Tasks view's selection: one POST for the checked rows, then the answer in the flash.
(() => {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const flash = document.getElementById("flash");
  const all = document.getElementById("select-all");
  const picks = () => Array.from(document.querySelectorAll("input.pick"));
  if (all) {
    all.addEventListener("change", () => picks().forEach((box) => { box.checked = all.checked; }));
  }
  const say = (text, isError) => {
    flash.textContent = text;
    flash.className = isError ? "flash error" : "flash";
    flash.hidden = false;
  };
  document.querySelectorAll("button.bulk-act").forEach((button) => {
    button.addEventListener("click", async () => {
      const ids = picks().filter((box) => box.checked).map((box) => box.value);
      if (ids.length === 0) { say("Select tasks first", true); return; }
      const body = new URLSearchParams();
      ids.forEach((id) => body.append("ids", id));
      const response = await fetch(`/dashboard/tasks-bulk/${button.dataset.bulk}`, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf ? csrf.content : "" },
        body,
      });
      const answer = await response.json();
      if (!response.ok) { say(answer.detail || `Refused (${response.status})`, true); return; }
      const refused = answer.refused.map((r) => `${r.id.slice(0, 8)}: ${r.reason}`).join("; ");
      const text = `${answer.action}: ${answer.done} of ${answer.requested} done`;
      say(refused ? `${text}; refused ${refused}` : text, answer.refused.length > 0);
      answer.done_ids.forEach((id) => {
        const row = document.querySelector(`tr[data-task="${id}"]`);
        if (row) { row.dataset.done = button.dataset.bulk; }
      });
    });
  });
})();
