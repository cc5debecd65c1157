// Push progress: asks the console for the outbox counts every 2 seconds and fills the table.
(function () {
  "use strict";
  var box = document.querySelector("[data-progress]");
  if (!box) { return; }
  var url = box.getAttribute("data-progress");
  var body = box.querySelector("tbody");
  var statuses = ["sent", "pending", "failed", "unconfirmed"];

  function row(channel) {
    var found = body.querySelector('tr[data-channel="' + channel + '"]');
    if (found) { return found; }
    var tr = document.createElement("tr");
    tr.setAttribute("data-channel", channel);
    var name = document.createElement("td");
    name.textContent = channel;
    tr.appendChild(name);
    statuses.forEach(function (status) {
      var td = document.createElement("td");
      td.setAttribute("data-status", status);
      tr.appendChild(td);
    });
    body.insertBefore(tr, body.querySelector("tr.total"));
    return tr;
  }

  function fill(tr, counts) {
    statuses.forEach(function (status) {
      tr.querySelector('td[data-status="' + status + '"]').textContent = counts[status];
    });
  }

  function tick() {
    fetch(url, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        Object.keys(data.channels).forEach(function (channel) {
          fill(row(channel), data.channels[channel]);
        });
        fill(body.querySelector("tr.total"), data.total);
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 2000);
}());
