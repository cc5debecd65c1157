// My grid: asks the console for new urgent requests every few seconds and lists them.
(function () {
  "use strict";
  var box = document.querySelector("[data-urgent]");
  if (!box) { return; }
  var url = box.getAttribute("data-urgent");
  var after = parseInt(box.getAttribute("data-after"), 10) || 0;
  var every = (parseInt(box.getAttribute("data-seconds"), 10) || 5) * 1000;
  var list = document.getElementById("urgent-new");
  var reload = document.getElementById("urgent-reload");
  var seen = {};

  function show(item) {
    if (seen[item.id]) { return; }
    seen[item.id] = true;
    var li = document.createElement("li");
    var link = document.createElement("a");
    link.href = "/requests/" + encodeURIComponent(item.tracking_number);
    link.textContent = item.tracking_number;
    li.appendChild(link);
    li.appendChild(document.createTextNode(" · " + item.category + " · " + item.filed));
    list.insertBefore(li, list.firstChild);
    reload.hidden = false;
  }

  function tick() {
    fetch(url + "&after=" + after, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        data.urgent.forEach(show);
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
}());
