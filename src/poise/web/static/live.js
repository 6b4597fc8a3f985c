// What happens, as it happens: the page listens to /events (server-sent events) and
// moves what shows a run's progress — [data-run] elements and their [data-field]s —
// and adds each rebalance request raised to a [data-requests] list. The browser's
// EventSource reconnects by itself when the stream ends.
(function () {
  "use strict";

  function set(root, field, apply) {
    root.querySelectorAll('[data-field="' + field + '"]').forEach(apply);
  }

  function cell(row, field, text) {
    var td = document.createElement("td");
    if (field) { td.dataset.field = field; }
    if (text !== undefined) { td.textContent = text; }
    row.appendChild(td);
    return td;
  }

  function newRow(run) {
    // A run started since the page opened: a row of its own at the top of the list.
    var body = document.querySelector("tbody[data-runs]");
    if (!body) { return; }
    var row = document.createElement("tr");
    row.dataset.run = run.run_id;
    var link = document.createElement("a");
    link.href = "/runs/" + encodeURIComponent(run.run_id);
    link.textContent = run.run_id;
    cell(row).appendChild(link);
    cell(row, "status", run.status);
    cell(row, "", "");
    cell(row, "", "");
    cell(row, "", run.started_at.slice(0, 16).replace("T", " ") + " UTC");
    var td = cell(row);
    var bar = document.createElement("progress");
    bar.dataset.field = "progress";
    bar.setAttribute("aria-label", "households finished");
    td.appendChild(bar);
    var count = document.createElement("span");
    count.dataset.field = "count";
    td.appendChild(document.createTextNode(" "));
    td.appendChild(count);
    cell(row, "failed", "").className = "num";
    var empty = body.querySelector("[data-empty]");
    if (empty) { empty.remove(); }
    body.prepend(row);
  }

  function onRun(run) {
    if (!document.querySelector('[data-run="' + CSS.escape(run.run_id) + '"]')) { newRow(run); }
    document.querySelectorAll('[data-run="' + CSS.escape(run.run_id) + '"]').forEach(function (root) {
      var finished = run.done + run.failed;
      var total = run.households || finished || 1;
      set(root, "status", function (el) { el.textContent = run.status; });
      set(root, "failed", function (el) { el.textContent = String(run.failed); });
      set(root, "count", function (el) { el.textContent = finished + " of " + (run.households || "?"); });
      set(root, "progress", function (el) { el.max = total; el.value = finished; });
      if (run.status !== "running" && root.dataset.reloadWhenEnded === "yes") {
        root.dataset.reloadWhenEnded = "no";
        window.location.reload();  // the summary and the failures, as kept
      }
    });
  }

  function onRequest(request) {
    document.querySelectorAll("[data-requests]").forEach(function (list) {
      var item = document.createElement("li");
      var what = request.account_id ? "account " + request.account_id : "household " + request.household_id;
      var link = document.createElement("a");
      link.href = request.account_id ? "/accounts/" + encodeURIComponent(request.account_id)
                                     : "/households/" + encodeURIComponent(request.household_id);
      link.textContent = what;
      item.appendChild(link);
      item.appendChild(document.createTextNode(
        ": " + request.reasons.join(", ").replace(/_/g, " ") + " — " + request.status));
      item.dataset.request = request.request_id;
      var empty = list.querySelector("[data-empty]");
      if (empty) { empty.remove(); }
      list.prepend(item);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.EventSource) { return; }
    var source = new EventSource("/events");
    source.addEventListener("run", function (e) { onRun(JSON.parse(e.data)); });
    source.addEventListener("request", function (e) { onRequest(JSON.parse(e.data)); });
    source.addEventListener("ready", function () { document.body.dataset.live = "yes"; });
  });
})();
