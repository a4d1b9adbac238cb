// ROP Report page behaviour: the drill-down slider, the sync button, the
// period picker and the charts. No framework: htmx does the fetching.
(function () {
  "use strict";

  function panel() { return document.getElementById("drill-panel"); }
  function openPanel() { var p = panel(); if (p) { p.classList.add("open"); p.setAttribute("aria-hidden", "false"); } }
  function closePanel() { var p = panel(); if (p) { p.classList.remove("open"); p.setAttribute("aria-hidden", "true"); } }

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-close-panel]")) { closePanel(); }
  });
  document.addEventListener("keydown", function (e) { if (e.key === "Escape") { closePanel(); } });
  // Open the panel at once with a loading line, so a click always answers.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail && e.detail.target;
    if (target && target.id === "drill-body" && panel() && !panel().classList.contains("open")) {
      target.innerHTML = '<p class="loading">…</p>';
      openPanel();
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail && e.detail.target && e.detail.target.id === "drill-body" && panel()) { openPanel(); }
  });
  // Error pages come back with 4xx; show them in the panel instead of dropping them.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr && e.detail.xhr.status >= 400) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });

  function periodPicker() {
    var period = document.getElementById("period");
    var dates = document.getElementById("dates");
    if (!period || !dates) { return; }
    function sync() { dates.classList.toggle("inactive", period.value !== "custom"); }
    // Editing a date switches the period to custom dates.
    dates.querySelectorAll("input").forEach(function (i) {
      i.addEventListener("change", function () { period.value = "custom"; sync(); });
    });
    period.addEventListener("change", function () {
      if (period.value !== "custom") { period.form.requestSubmit(); }
      sync();
    });
    sync();
  }

  function syncButton() {
    var box = document.getElementById("sync");
    var button = document.getElementById("sync-button");
    var out = document.getElementById("sync-progress");
    if (!box || !button || button.disabled) { return; }
    var url = box.dataset.url;
    function describe(s) {
      if (s.state === "running") {
        var p = s.progress;
        var detail = "";
        if (p && p.entity !== undefined) { detail = p.entity + " " + p.done + (p.total ? " / " + p.total : ""); }
        else if (p != null) { detail = typeof p === "object" ? JSON.stringify(p) : String(p); }
        return box.dataset.running + " " + detail;
      }
      if (s.state === "done") { return box.dataset.done; }
      if (s.state === "failed") { return box.dataset.failed + ": " + s.message; }
      return "";
    }
    function poll() {
      fetch(url).then(function (r) { return r.json(); }).then(function (s) {
        out.textContent = describe(s);
        if (s.state === "running") { setTimeout(poll, 1000); return; }
        button.disabled = false;
        if (s.state === "done") { window.location.reload(); }
      });
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ full: false, wait: false }) })
        .then(function () { poll(); });
    });
    if (box.dataset.state === "running") { button.disabled = true; poll(); }
  }

  function fmtNumber(v, lang) {
    return new Intl.NumberFormat(lang === "en" ? "en-US" : "ru-RU", { maximumFractionDigits: 0 }).format(v);
  }

  function charts() {
    if (typeof echarts === "undefined") { return; }
    var dataEl = document.getElementById("charts-data");
    var textEl = document.getElementById("i18n-data");
    if (!dataEl || !textEl) { return; }
    var data = JSON.parse(dataEl.textContent);
    var t = JSON.parse(textEl.textContent);
    var made = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var kind = el.dataset.chart;
      var chart = echarts.init(el, null, { renderer: "svg" });
      var option = null;
      if (kind === "funnel") {
        var f = data.funnels[Number(el.dataset.index)];
        var steps = f.steps;
        option = {
          animation: false,
          tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
          grid: { left: 150, right: 70, top: 10, bottom: 20 },
          xAxis: { type: "value", show: false },
          yAxis: { type: "category", inverse: true, data: steps.map(function (s) { return s.name; }) },
          series: [{ type: "bar", data: steps.map(function (s) { return s.count; }), itemStyle: { color: "#2fc6f6" },
            label: { show: true, position: "right", formatter: function (p) {
              var c = steps[p.dataIndex].conversion;
              return fmtNumber(p.value, t.lang) + (c == null ? "" : "  (" + Math.round(c * 100) + "%)");
            } } }]
        };
      } else if (kind === "bars") {
        var b = data.bars;
        option = {
          animation: false,
          tooltip: { trigger: "axis" },
          legend: { data: [t.won_amount, t.win_rate], top: 0 },
          grid: { left: 70, right: 50, top: 30, bottom: 80 },
          xAxis: { type: "category", data: b.names, axisLabel: { rotate: 35, interval: 0, fontSize: 10 } },
          yAxis: [{ type: "value", axisLabel: { formatter: function (v) { return fmtNumber(v, t.lang); } } },
                  { type: "value", max: 100, axisLabel: { formatter: "{value} %" } }],
          series: [{ name: t.won_amount, type: "bar", data: b.won_amount, itemStyle: { color: "#9dcf00" } },
                   { name: t.win_rate, type: "line", yAxisIndex: 1, data: b.win_rate, itemStyle: { color: "#2067b0" } }]
        };
      } else if (kind === "trend") {
        var tr = data.trend;
        option = {
          animation: false,
          tooltip: { trigger: "axis" },
          legend: { data: [t.new, t.won, t.lost], top: 0 },
          grid: { left: 50, right: 20, top: 30, bottom: 30 },
          xAxis: { type: "category", data: tr.labels },
          yAxis: { type: "value" },
          series: [{ name: t.new, type: "line", data: tr.new, itemStyle: { color: "#2fc6f6" } },
                   { name: t.won, type: "line", data: tr.won, itemStyle: { color: "#9dcf00" } },
                   { name: t.lost, type: "line", data: tr.lost, itemStyle: { color: "#ff5752" } }]
        };
      }
      if (option) { chart.setOption(option); made.push(chart); }
    });
    window.addEventListener("resize", function () { made.forEach(function (c) { c.resize(); }); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    periodPicker();
    syncButton();
    charts();
  });
})();
