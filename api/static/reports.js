// The reports page (api/pages/reports.py): the progress of runs queued or running, asked every two
// seconds; when one ends, the page reloads to show its files. Without script: the «Обновить» link.
document.addEventListener("DOMContentLoaded", () => {
  const rows = Array.from(document.querySelectorAll("tr[data-report][data-active]"));
  if (!rows.length) return;
  const poll = async () => {
    let ended = false;
    for (const row of rows) {
      const response = await fetch(`/reports/${row.dataset.report}/progress`, { credentials: "same-origin" });
      if (!response.ok) continue;
      const run = await response.json();
      const bar = row.querySelector("progress");
      if (bar) bar.value = run.progress;
      const percent = row.querySelector("[data-percent]");
      if (percent) percent.textContent = `${run.progress} %`;
      const stage = row.querySelector("[data-stage]");
      if (stage) stage.textContent = run.stage;
      if (run.status === "done" || run.status === "failed") ended = true;
    }
    if (ended) window.location.reload();
    else window.setTimeout(poll, 2000);
  };
  window.setTimeout(poll, 1000);
});
