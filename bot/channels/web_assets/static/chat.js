// The web chat in the page: sends without reloading, shows each delivered message live
// (server-sent events, else polling), shares the place, records voice notes, replays voice
// replies. Without this script the page still works: its forms post and the page reloads.
"use strict";

document.documentElement.classList.add("js");

(function () {
  const body = document.body;
  const prefix = body.dataset.prefix;
  const csrf = body.dataset.csrf;
  const list = document.getElementById("messages");
  const status = document.getElementById("status");
  const text = document.getElementById("text");
  let last = parseInt(body.dataset.last, 10) || 0;
  let choiceWasFocused = false;

  function say(message) {
    status.textContent = message || "";
  }

  function scrollDown() {
    window.scrollTo(0, document.body.scrollHeight);
  }

  // --- drawing messages ---------------------------------------------------------------
  function element(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function retire() {
    // Only the newest message's choices can be pressed: older ones become a plain list.
    list.querySelectorAll("form.choices").forEach(function (form) {
      const old = element("ol", "old-choices");
      form.querySelectorAll("button .label").forEach(function (label) {
        old.appendChild(element("li", "", label.textContent));
      });
      form.replaceWith(old);
    });
    list.querySelectorAll(".share-location").forEach(function (button) { button.remove(); });
  }

  function voiceBlock(src) {
    const box = element("div", "voice");
    const audio = element("audio");
    audio.controls = true;
    audio.preload = "none";
    audio.setAttribute("aria-label", body.dataset.voice);
    const source = element("source");
    source.src = src;
    source.type = "audio/ogg";
    audio.appendChild(source);
    const replay = element("button", "replay", body.dataset.play);
    replay.type = "button";
    box.appendChild(audio);
    box.appendChild(replay);
    return box;
  }

  function draw(message, live) {
    if (document.getElementById("m" + message.id)) return;
    const item = element("li", "msg bot" + (message.vertical ? " vertical" : ""));
    item.id = "m" + message.id;
    item.dataset.id = message.id;
    if (message.lang) item.lang = message.lang;
    item.dir = message.rtl ? "rtl" : "auto";
    if (message.text) item.appendChild(element("p", "text", message.text));
    if (message.map) {
      const link = element("a", "map", body.dataset.map);
      link.href = message.map;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      item.appendChild(link);
    }
    if (message.audio) {
      const box = voiceBlock(message.audio);
      item.appendChild(box);
      if (live) {
        box.querySelector("audio").play().catch(function () { /* the replay button stays */ });
      }
    }
    if (message.buttons.length || message.location) retire();
    if (message.location) {
      const share = element("button", "share-location", body.dataset.location);
      share.type = "button";
      item.appendChild(share);
    }
    if (message.buttons.length) {
      const form = element("form", "choices");
      form.method = "post";
      form.action = prefix + "/send";
      const token = element("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = csrf;
      form.appendChild(token);
      message.buttons.forEach(function (pair, index) {
        const button = element("button", "choice" + (pair[1].indexOf("lang:") === 0 ? " language" : ""));
        button.name = "payload";
        button.value = pair[1];
        const number = element("span", "number", String(index + 1));
        number.setAttribute("aria-hidden", "true");
        button.appendChild(number);
        button.appendChild(document.createTextNode(" "));
        button.appendChild(element("span", "label", pair[0]));
        form.appendChild(button);
      });
      item.appendChild(form);
    }
    list.appendChild(item);
    if (live && choiceWasFocused) {
      const first = item.querySelector("button.choice");
      if (first) {
        first.focus();
        choiceWasFocused = false;
      }
    }
  }

  function ownMessage(words) {
    if (!words) return;
    const item = element("li", "msg you");
    item.dir = "auto";
    const who = element("span", "visually-hidden", body.dataset.you + ": ");
    item.appendChild(who);
    item.appendChild(element("p", "text", words));
    list.appendChild(item);
    scrollDown();
  }

  function receive(message, live) {
    if (message.skip) {
      last = Math.max(last, message.skip);
      return;
    }
    if (message.id <= last) return;
    last = message.id;
    draw(message, live);
    say("");
    scrollDown();
  }

  // --- receiving ----------------------------------------------------------------------
  function poll() {
    fetch(prefix + "/messages?after=" + last, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        data.messages.forEach(function (m) { receive(m, true); });
        last = Math.max(last, data.last);
        say("");
      })
      .catch(function () { say(body.dataset.offline); })
      .finally(function () { window.setTimeout(poll, 3000); });
  }

  function listen() {
    if (!window.EventSource) {
      poll();
      return;
    }
    let source = null;
    function open() {
      source = new EventSource(prefix + "/events?after=" + last);
      source.onmessage = function (event) {
        receive(JSON.parse(event.data), true);
      };
      source.onopen = function () { say(""); };
      source.onerror = function () {
        say(body.dataset.offline);
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (a refused request): start again from the last id we have.
          window.setTimeout(open, 3000);
        }
      };
    }
    open();
  }

  // --- sending ------------------------------------------------------------------------
  function post(data, echo) {
    // What the resident sent is shown at once, before the answer (which may come first
    // through the event stream otherwise).
    ownMessage(echo);
    data.set("csrf_token", csrf);
    say(body.dataset.sending);
    return fetch(prefix + "/send", {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Linli-Chat": "1" },
    }).then(function (response) {
      return response.json().then(function (answer) {
        if (!answer.ok) say(answer.error);
        else if (status.textContent === body.dataset.sending) say("");
      });
    }).catch(function () { say(body.dataset.offline); });
  }

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (form.id === "photo-form" && !form.querySelector("#photo").files.length) {
      event.preventDefault();
      return;
    }
    event.preventDefault();
    const data = new FormData(form);
    let echo = "";
    if (event.submitter && event.submitter.name === "payload") {
      data.set("payload", event.submitter.value);
      const label = event.submitter.querySelector(".label");
      echo = label ? label.textContent : "";
      choiceWasFocused = true;
    } else if (form.id === "compose") {
      echo = text.value.trim();
      if (!echo) return;
      text.value = "";
    } else if (form.id === "photo-form") {
      echo = "📷";
    }
    post(data, echo).then(function () {
      if (form.id === "photo-form") form.reset();
    });
  });

  text.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      document.getElementById("compose").requestSubmit();
    }
  });

  document.getElementById("photo").addEventListener("change", function () {
    document.getElementById("photo-form").requestSubmit();
  });

  // --- place, voice -------------------------------------------------------------------
  list.addEventListener("click", function (event) {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.classList.contains("share-location")) {
      if (!navigator.geolocation) {
        say(body.dataset.noLocation);
        return;
      }
      navigator.geolocation.getCurrentPosition(function (position) {
        const data = new FormData();
        data.set("latitude", String(position.coords.latitude));
        data.set("longitude", String(position.coords.longitude));
        post(data, "📍");
      }, function () {
        say(body.dataset.noLocation);
        text.focus();
      }, { enableHighAccuracy: true, timeout: 15000 });
    } else if (target.classList.contains("replay")) {
      const audio = target.parentNode.querySelector("audio");
      audio.currentTime = 0;
      audio.play().catch(function () { /* the controls still work */ });
    }
  });

  list.querySelectorAll(".share-location").forEach(function (button) { button.hidden = false; });

  const record = document.getElementById("record");
  if (window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    record.hidden = false;
    let recorder = null;
    let pieces = [];
    record.addEventListener("click", function () {
      if (recorder && recorder.state === "recording") {
        recorder.stop();
        return;
      }
      navigator.mediaDevices.getUserMedia({ audio: true }).then(function (stream) {
        const type = ["audio/ogg;codecs=opus", "audio/webm;codecs=opus"].find(function (t) {
          return MediaRecorder.isTypeSupported(t);
        });
        recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
        pieces = [];
        recorder.ondataavailable = function (event) { pieces.push(event.data); };
        recorder.onstop = function () {
          stream.getTracks().forEach(function (track) { track.stop(); });
          record.textContent = body.dataset.record;
          record.setAttribute("aria-pressed", "false");
          const blob = new Blob(pieces, { type: recorder.mimeType });
          const data = new FormData();
          data.set("voice", blob, "voice" + (recorder.mimeType.indexOf("ogg") >= 0 ? ".ogg" : ".webm"));
          post(data, "🎤");
        };
        recorder.start();
        record.textContent = body.dataset.stop;
        record.setAttribute("aria-pressed", "true");
      }).catch(function () { record.hidden = true; });
    });
  }

  scrollDown();
  listen();
})();
