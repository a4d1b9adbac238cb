/* The digests page: add and remove subscriptions as JSON POSTs (no inline script). */
(function () {
  "use strict";

  function status(text) { document.getElementById("digest-status").textContent = text; }

  function post(target, body) {
    return fetch(target, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || r.status); }
        return data;
      });
    });
  }

  function formBody(form) {
    var data = new FormData(form), body = { channels: [] };
    data.forEach(function (value, key) {
      if (key === "channel") { body.channels.push(value); } else { body[key] = value; }
    });
    body.xlsx = data.get("xlsx") === "1";
    body.any_day = data.get("any_day") === "1";
    return body;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("digest-add");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        post(form.dataset.url, formBody(form))
          .then(function () { window.location.reload(); })
          .catch(function (err) { status(err.message); });
      });
    }
    document.querySelectorAll(".digest-remove").forEach(function (button) {
      button.addEventListener("click", function () {
        post(button.dataset.url)
          .then(function () { window.location.reload(); })
          .catch(function (err) { status(err.message); });
      });
    });
  });
})();
