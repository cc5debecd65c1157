// Area alert page: asks the console for the answers and the check list every 3 seconds.
(function () {
  "use strict";
  var box = document.querySelector("[data-alert-status]");
  if (!box) { return; }
  var url = box.getAttribute("data-alert-status");
  var reasons = {};
  var names = document.getElementById("reason-names");  // a <template>: its own fragment
  names.content.querySelectorAll("span").forEach(function (span) {
    reasons[span.getAttribute("data-reason")] = span.textContent;
  });

  function cell(text, link) {
    var td = document.createElement("td");
    if (link) {
      var a = document.createElement("a");
      a.href = link;
      a.textContent = text;
      td.appendChild(a);
    } else {
      td.textContent = text;
    }
    return td;
  }

  function fill(data) {
    var answers = box.querySelector("#answers tbody");
    answers.replaceChildren();
    data.grids.forEach(function (g) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-grid", g.grid);
      tr.appendChild(cell(g.name));
      ["safe", "help", "no_answer"].forEach(function (key) {
        var td = cell(String(g[key]));
        td.setAttribute("data-count", key);
        tr.appendChild(td);
      });
      answers.appendChild(tr);
    });
    var checks = box.querySelector("#checks tbody");
    checks.replaceChildren();
    data.checks.forEach(function (c) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(c.grid));
      tr.appendChild(cell(c.building));
      tr.appendChild(cell(c.name || "#" + c.resident, "/conversations/" + c.resident));
      tr.appendChild(cell(c.phone));
      tr.appendChild(cell(reasons[c.reason] || c.reason));
      tr.appendChild(cell(c.since));
      checks.appendChild(tr);
    });
    box.querySelector("#no-checks").hidden = data.checks.length > 0;
  }

  function tick() {
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { fill(data); } })
      .catch(function () {})
      .then(function () { setTimeout(tick, 3000); });
  }
  setTimeout(tick, 3000);
}());
