/* The access settings page (app mode): each change is one JSON POST, then the page reloads. */
(function () {
  "use strict";

  function send(root, body) {
    var status = document.getElementById("rights-status");
    status.textContent = "…";
    return fetch(root.dataset.save, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || String(r.status)); }
        window.location.reload();
      });
    }).catch(function (e) { status.textContent = root.dataset.failed + ": " + e.message; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("rights");
    if (!root) { return; }
    document.getElementById("rights-add").addEventListener("submit", function (ev) {
      ev.preventDefault();
      send(root, {
        action: document.getElementById("rights-verb").value,
        viewer: document.getElementById("rights-viewer").value,
        user: document.getElementById("rights-user").value
      });
    });
    document.getElementById("rights-admin").addEventListener("submit", function (ev) {
      ev.preventDefault();
      send(root, { action: "admin", user: document.getElementById("rights-admin-user").value });
    });
    root.addEventListener("click", function (ev) {
      var b = ev.target.closest("button");
      if (!b) { return; }
      if (b.classList.contains("rights-clear")) {
        send(root, { action: "clear", viewer: b.dataset.viewer, user: b.dataset.user });
      } else if (b.classList.contains("rights-unadmin")) {
        send(root, { action: "unadmin", user: b.dataset.user });
      }
    });
  });
})();
