// Application mode: the page inside Bitrix24's frame. Connects to the portal
// through the vendored frame library (@bitrix24/b24jssdk, global B24Js),
// finishes the install on the install page, fits the frame to the page, and
// on the status page follows the first copy until the report can open.
(function () {
  "use strict";

  function frame() {
    if (typeof B24Js === "undefined" || window.parent === window) { return Promise.resolve(null); }
    if (!window.ropB24) {
      window.ropB24 = B24Js.initializeB24Frame().then(function (b24) {
        window.ropB24Ready = b24;  // app.js opens cards through it, synchronously on click
        return b24;
      }).catch(function () { return null; });
    }
    return window.ropB24;
  }
  window.ropFrame = frame;

  function status() {
    var box = document.getElementById("app-status");
    if (!box) { return; }
    var out = document.getElementById("sync-progress");
    var entities = {};
    try { entities = JSON.parse(box.dataset.entities || "{}"); } catch (err) { entities = {}; }
    function poll() {
      fetch(box.dataset.syncUrl).then(function (r) { return r.json(); }).then(function (s) {
        var p = s.progress;
        if (s.state === "running") {
          var detail = p && p.entity !== undefined ? (entities[p.entity] || p.entity) + " " + p.done + (p.total ? " / " + p.total : "") : "";
          out.textContent = box.dataset.running + " " + detail;
          setTimeout(poll, 1000);
        } else if (s.state === "failed") {
          out.textContent = box.dataset.failed + ": " + s.message;
        } else if (s.state === "done") {
          window.location.assign(box.dataset.reportUrl);
        } else {
          setTimeout(poll, 1000);
        }
      }).catch(function () { setTimeout(poll, 3000); });
    }
    poll();
  }

  // Fresh without pressing anything: the portal's events bring changes into
  // the store; when its data changed, the report reloads itself (not while
  // a drill-down is open or the filter is being edited).
  function followData() {
    var meta = document.querySelector('meta[name="rop-data-version"]');
    if (!meta || !document.getElementById("report-table")) { return; }
    var url = meta.getAttribute("content");
    var seen = null;
    function busy() {
      var panel = document.getElementById("drill-panel");
      return (panel && panel.classList.contains("open")) || document.querySelector("details.multi[open]") ||
        (document.activeElement && document.activeElement.form && document.activeElement.form.id === "filter");
    }
    function poll() {
      fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (d) {
        if (d && seen !== null && d.version !== seen && !busy()) { window.location.reload(); return; }
        if (d && (seen === null || !busy())) { seen = d.version; }
        setTimeout(poll, 2000);
      }).catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    followData();
    frame().then(function (b24) {
      if (!b24) { return; }
      var box = document.getElementById("app-status");
      if (box && box.dataset.install === "1") {
        b24.installFinish().catch(function () { /* already installed */ });
      }
      // The frame grows with the page (charts draw, drill-downs open), so the
      // portal scrolls, not an inner scroll bar of the frame.
      if (b24.parent && b24.parent.fitWindow) {
        var pending = null;
        var fit = function () {
          if (pending) { return; }
          pending = setTimeout(function () { pending = null; b24.parent.fitWindow().catch(function () {}); }, 100);
        };
        fit();
        window.addEventListener("load", fit);
        if (typeof ResizeObserver !== "undefined") { new ResizeObserver(fit).observe(document.body); }
      }
    });
    status();
  });
})();
