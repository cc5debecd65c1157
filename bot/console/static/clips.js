// Voice clips: records a message with the browser's microphone (MediaRecorder), plays it
// back, and uploads it through the same form as a file (with the form's CSRF token).
(function () {
  "use strict";
  var table = document.querySelector("[data-clips]");
  if (!table) { return; }
  var canRecord = !!(window.MediaRecorder && navigator.mediaDevices &&
                     navigator.mediaDevices.getUserMedia);
  if (!canRecord) {
    var note = document.getElementById("no-microphone");
    if (note) { note.hidden = false; }
    return;
  }
  // Chromium records WebM/Opus, Firefox OGG/Opus; the server turns either into OGG/Opus.
  var types = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus", "audio/webm"];
  var mimeType = types.filter(function (type) {
    return MediaRecorder.isTypeSupported(type);
  })[0] || "";
  var current = null;  // the form that is recording now: one at a time

  function tooBig(form, size) {
    // The console refuses bodies over its limit (console.max_form_bytes) before reading them.
    if (size <= Number(form.getAttribute("data-max-bytes")) - 4096) { return false; }
    form.querySelector("[data-state]").textContent = form.getAttribute("data-too-big");
    form.setAttribute("data-state", "error");
    return true;
  }

  function setup(form) {
    var record = form.querySelector("[data-record]");
    var preview = form.querySelector("[data-preview]");
    var save = form.querySelector("[data-save]");
    var state = form.querySelector("[data-state]");
    var recorder = null;
    var stream = null;
    var blob = null;
    record.hidden = false;

    function stopStream() {
      if (stream) {
        stream.getTracks().forEach(function (track) { track.stop(); });
        stream = null;
      }
    }

    function start() {
      if (current && current !== form) { return; }
      navigator.mediaDevices.getUserMedia({audio: true}).then(function (media) {
        stream = media;
        var chunks = [];
        recorder = new MediaRecorder(stream, mimeType ? {mimeType: mimeType} : {});
        recorder.addEventListener("dataavailable", function (event) {
          if (event.data && event.data.size) { chunks.push(event.data); }
        });
        recorder.addEventListener("stop", function () {
          stopStream();
          blob = new Blob(chunks, {type: recorder.mimeType || mimeType || "audio/webm"});
          if (preview.src) { URL.revokeObjectURL(preview.src); }
          preview.src = URL.createObjectURL(blob);
          preview.hidden = false;
          save.hidden = false;
          record.textContent = record.getAttribute("data-label-start");
          form.setAttribute("data-state", "recorded");
          current = null;
        });
        recorder.start();
        current = form;
        form.setAttribute("data-state", "recording");
        record.textContent = record.getAttribute("data-label-stop");
        state.textContent = "";
      }).catch(function (error) {
        state.textContent = error.name || String(error);
        form.setAttribute("data-state", "error");
      });
    }

    record.addEventListener("click", function () {
      if (recorder && recorder.state === "recording") {
        recorder.stop();
      } else {
        start();
      }
    });

    form.addEventListener("submit", function (event) {
      var file = form.querySelector("input[type=file]").files[0];
      if (file && tooBig(form, file.size)) { event.preventDefault(); }
    });

    save.addEventListener("click", function () {
      if (!blob || tooBig(form, blob.size)) { return; }
      var data = new FormData();
      data.append("csrf_token", form.querySelector("[name=csrf_token]").value);
      var suffix = blob.type.indexOf("ogg") >= 0 ? ".ogg" : ".webm";
      data.append("audio", blob, "recording" + suffix);
      save.disabled = true;
      form.setAttribute("data-state", "saving");
      // The answer is a redirect to this page with a message: follow it as a page load, so
      // the message (saved, or why not) is shown.
      fetch(form.action, {method: "POST", body: data, credentials: "same-origin",
                          redirect: "manual"})
        .then(function () {
          // A new query string each time, so that this is a page load, not a jump to #clip.
          window.location.assign(form.getAttribute("data-return") + "&saved=" + Date.now() +
                                 "#" + form.closest("tr").id);
        })
        .catch(function (error) {
          save.disabled = false;
          state.textContent = error.name || String(error);
          form.setAttribute("data-state", "error");
        });
    });
  }

  Array.prototype.forEach.call(table.querySelectorAll("form.clip-form"), setup);
}());
