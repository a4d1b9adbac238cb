// ROP Report page behaviour: the drill-down slider (a modal dialog: focus in,
// Tab kept inside, Escape closes, focus back; kept in the URL, so Back closes
// it and a shared URL opens it), the filter's dates, pickers and period, the
// section links of the wide table, the sync button and the charts (a click
// lists the records behind a bar or a point).
// No framework: htmx does the fetching.
(function () {
  "use strict";

  function panel() { return document.getElementById("drill-panel"); }
  // The element that opened the panel gets the focus back when it closes.
  var opener = null;
  function isOpen() { var p = panel(); return !!(p && p.classList.contains("open")); }
  function openPanel() {
    var p = panel();
    if (!p) { return; }
    if (!isOpen()) {
      var active = document.activeElement;
      opener = active && active !== document.body && !p.contains(active) ? active : opener;
      p.classList.add("open");
      p.setAttribute("aria-hidden", "false");
      p.removeAttribute("inert");
    }
  }
  function focusPanel() {
    // Focus the title so a screen reader reads what opened and Tab walks the panel.
    var title = document.querySelector("#drill-body .drill-title") || document.getElementById("drill-close");
    if (title) { title.focus({ preventScroll: true }); }
  }
  // ``fromHistory``: Back (or a URL without the panel) closed it; the URL is right already.
  function closePanel(fromHistory) {
    var p = panel();
    if (!p || !isOpen()) { return; }
    if (fromHistory !== true && history.state && history.state.pushed) {
      // Our own entry: step back to the page without the panel, as Back does;
      // the popstate that follows closes it (so a next click cannot race it).
      history.back();
      setTimeout(function () { if (!new URL(window.location.href).searchParams.has(DRILL)) { closePanel(true); } }, 400);
      return;
    }
    p.classList.remove("open");
    p.setAttribute("aria-hidden", "true");
    p.setAttribute("inert", "");
    if (opener && document.contains(opener)) { opener.focus({ preventScroll: true }); }
    opener = null;
    if (fromHistory !== true) { forgetDrill(); }
  }

  // The open panel lives in the page's URL as drill=<the drill-down's query>:
  // opening it pushes a history entry, Back closes it, sorting and paging
  // inside it replace the entry, and a shared URL opens the report with the
  // panel open. Only a query travels: the path is always the drill-down's own.
  var DRILL = "drill";
  var restoring = false; // opening from the URL (page load, Back/Forward): no new entry
  var pushNext = false;
  function drillQuery(href) {
    var i = href ? href.indexOf("?") : -1;
    return i < 0 ? "" : href.slice(i + 1);
  }
  function pageUrl(query) {
    var url = new URL(window.location.href);
    if (query) { url.searchParams.set(DRILL, query); } else { url.searchParams.delete(DRILL); }
    return url.pathname + url.search + url.hash;
  }
  function rememberDrill(query) {
    if (!query || !window.history) { return; }
    if (pushNext) {
      history.pushState({ ropDrill: query, pushed: true }, "", pageUrl(query));
    } else {
      var pushed = !!(history.state && history.state.pushed);
      history.replaceState({ ropDrill: query, pushed: pushed }, "", pageUrl(query));
    }
    pushNext = false;
  }
  function forgetDrill() {
    // A panel opened from a shared URL: the page stays, without the panel in its URL.
    if (new URL(window.location.href).searchParams.has(DRILL)) { history.replaceState(null, "", pageUrl("")); }
  }
  function openDrill(href, source) {
    if (typeof htmx === "undefined") { window.location.href = href; return; }
    htmx.ajax("GET", href, { source: source || document.body, target: "#drill-body", swap: "innerHTML" });
  }
  function drillFromUrl() {
    var p = panel();
    if (!p || !p.dataset.base) { return; }
    var query = new URL(window.location.href).searchParams.get(DRILL);
    if (query) {
      restoring = true;
      openDrill(p.dataset.base + "?" + query);
    } else {
      closePanel(true);
    }
  }
  window.addEventListener("popstate", drillFromUrl);

  // A record's card or a user's profile opens in a new tab. One function, so
  // an embedding (Bitrix24's slider in the app mode) can swap how it opens.
  // Inside Bitrix24's frame (app mode) that is the portal's own slider:
  // openPath of the frame library, connected by app_frame.js.
  function openCard(url) {
    var b24 = window.ropB24Ready;
    if (b24 && b24.slider) {
      b24.slider.openPath(url).catch(function () { window.open(url, "_blank", "noopener"); });
      return;
    }
    window.open(url, "_blank", "noopener");
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.card[href], a.profile[href]");
    if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) { return; }
    e.preventDefault();
    openCard(a.href);
  });

  document.addEventListener("click", function (e) {
    if (e.target.closest("[data-close-panel]")) { closePanel(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && isOpen()) { e.preventDefault(); closePanel(); return; }
    // Keep Tab inside the open panel (it is modal: the report behind is shaded).
    if (e.key === "Tab" && isOpen()) {
      var items = Array.prototype.filter.call(
        panel().querySelectorAll("a[href], button:not([disabled]), [tabindex='0'], input, select"),
        function (el) { return el.offsetParent !== null; });
      if (!items.length) { return; }
      var first = items[0], last = items[items.length - 1];
      if (e.shiftKey && (document.activeElement === first || !panel().contains(document.activeElement))) {
        e.preventDefault(); last.focus();
      } else if (!e.shiftKey && (document.activeElement === last || !panel().contains(document.activeElement))) {
        e.preventDefault(); first.focus();
      }
    }
  });
  // A number opens its drill-down in the panel. One delegated listener instead
  // of hx-get on each of the table's ~1,500 links keeps the page small; with
  // a modifier key (or before htmx loads) the link opens as a page of its own.
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("#report-table a.drill[href], #stages a.drill[href], #manager a.drill[href], #quality a.drill[href]");
    if (!a || typeof htmx === "undefined" || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) { return; }
    e.preventDefault();
    openDrill(a.getAttribute("href"), a);
  });
  // Open the panel at once with a loading line, so a click always answers.
  document.addEventListener("htmx:beforeRequest", function (e) {
    var target = e.detail && e.detail.target;
    if (target && target.id === "drill-body" && panel()) {
      // A new panel is a new history entry; sorting or paging it is not.
      pushNext = !isOpen() && !restoring;
      if (!isOpen()) {
        target.innerHTML = '<p class="loading">…</p>';
        openPanel();
      }
    }
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail && e.detail.target && e.detail.target.id === "drill-body" && panel()) {
      var info = e.detail.pathInfo || {};
      if (!restoring) { rememberDrill(drillQuery(info.finalRequestPath || info.requestPath)); }
      restoring = false;
      openPanel();
      focusPanel();
    }
  });
  // Error pages come back with 4xx; show them in the panel instead of dropping them.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.xhr && e.detail.xhr.status >= 400) { e.detail.shouldSwap = true; e.detail.isError = false; }
  });

  // Dates are typed as text (DD.MM.YYYY on a Russian page); the calendar button
  // opens the native picker of a hidden date input and writes its choice back.
  function toIso(text, lang) {
    var m = lang === "ru" ? /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/.exec(text) : /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    if (!m) { return ""; }
    var y = lang === "ru" ? m[3] : m[1], mo = m[2], d = lang === "ru" ? m[1] : m[3];
    return y + "-" + ("0" + mo).slice(-2) + "-" + ("0" + d).slice(-2);
  }
  function fromIso(iso, lang) {
    var p = iso.split("-");
    return lang === "ru" ? p[2] + "." + p[1] + "." + p[0] : iso;
  }
  function isRealDay(iso) {
    var p = iso.split("-").map(Number);
    var d = new Date(Date.UTC(p[0], p[1] - 1, p[2]));
    return d.getUTCFullYear() === p[0] && d.getUTCMonth() === p[1] - 1 && d.getUTCDate() === p[2];
  }
  function datePickers() {
    var lang = document.documentElement.lang;
    document.querySelectorAll(".date-box").forEach(function (box) {
      var text = box.querySelector(".date-input");
      var native = box.querySelector(".date-native");
      var button = box.querySelector(".date-pick");
      if (!text) { return; }
      // On leaving the field: 01102026 typed without dots becomes 01.10.2026,
      // and a date not in the calendar (31.02.2026) is refused in the field
      // itself before the form leaves (the server checks again).
      text.addEventListener("input", function () { text.setCustomValidity(""); });
      text.addEventListener("blur", function () {
        var value = text.value.trim();
        var digits = lang === "ru" ? /^(\d{2})(\d{2})(\d{4})$/.exec(value) : null;
        if (digits) { value = digits[1] + "." + digits[2] + "." + digits[3]; text.value = value; }
        var iso = toIso(value, lang);
        text.setCustomValidity(value && !(iso && isRealDay(iso)) ? (text.dataset.invalid || "?") : "");
      });
      if (!native || !button || typeof native.showPicker !== "function") { return; }
      button.hidden = false;
      button.addEventListener("click", function () {
        native.value = toIso(text.value, lang) || native.value;
        try { native.showPicker(); } catch (err) { text.focus(); }
      });
      native.addEventListener("change", function () {
        if (!native.value) { return; }
        text.value = fromIso(native.value, lang);
        text.setCustomValidity("");
        text.dispatchEvent(new Event("change", { bubbles: true }));
      });
    });
  }

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

  // The pickers are <details>: one open at a time, closed by a click
  // elsewhere or by Escape (focus goes back to its summary).
  function pickers() {
    var all = document.querySelectorAll("details.multi");
    all.forEach(function (d) {
      d.addEventListener("toggle", function () {
        if (d.open) { all.forEach(function (o) { if (o !== d) { o.open = false; } }); }
      });
    });
    document.addEventListener("click", function (e) {
      all.forEach(function (d) { if (d.open && !d.contains(e.target)) { d.open = false; } });
    });
    document.addEventListener("keydown", function (e) {
      if (e.key !== "Escape" || isOpen()) { return; }
      all.forEach(function (d) {
        if (d.open) { d.open = false; d.querySelector("summary").focus(); }
      });
    });
  }

  // Typing in a picker's search box hides the names that do not match
  // (and department titles left with nobody under them).
  function pickerSearch() {
    document.querySelectorAll(".options-search").forEach(function (box) {
      box.addEventListener("input", function () {
        var q = box.value.trim().toLowerCase();
        var list = box.parentElement;
        var group = null, shown = 0;
        function close() { if (group) { group.hidden = q !== "" && shown === 0; } }
        Array.prototype.forEach.call(list.children, function (el) {
          if (el.classList.contains("options-group")) { close(); group = el; shown = 0; return; }
          if (el.tagName !== "LABEL") { return; }
          var hit = q === "" || el.textContent.toLowerCase().indexOf(q) >= 0;
          el.hidden = !hit;
          if (hit) { shown += 1; }
        });
        close();
      });
      // Enter in the search box must not submit the whole filter.
      box.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); } });
    });
  }

  // The section links scroll the table sideways so the section's first column
  // sits right of the sticky first column (an anchor jump would hide it under it).
  function sectionNav() {
    var wrap = document.getElementById("report-table-wrap");
    var first = wrap && wrap.querySelector("thead th.first");
    if (!wrap || !first) { return; }
    function measure() { wrap.style.setProperty("--first-w", first.offsetWidth + "px"); }
    measure();
    window.addEventListener("resize", measure);
    document.querySelectorAll("#section-nav a[data-section]").forEach(function (link) {
      link.addEventListener("click", function (e) {
        var head = document.getElementById("section-" + link.dataset.section);
        if (!head) { return; }
        e.preventDefault();
        var shift = head.getBoundingClientRect().left - wrap.getBoundingClientRect().left;
        wrap.scrollTo({ left: Math.max(0, wrap.scrollLeft + shift - first.offsetWidth), behavior: "smooth" });
      });
    });
  }

  function syncButton() {
    var box = document.getElementById("sync");
    var button = document.getElementById("sync-button");
    var out = document.getElementById("sync-progress");
    if (!box || !button || button.disabled) { return; }
    var url = box.dataset.url;
    var lang = document.documentElement.lang;
    var entities = {};
    try { entities = JSON.parse(box.dataset.entities || "{}"); } catch (err) { entities = {}; }
    function describe(s) {
      // Server mode: a job waiting for a worker (rop/jobs/status.py).
      if (s.state === "running" && s.queued) { return box.dataset.queued; }
      if (s.state === "running") {
        var p = s.progress;
        var detail = "";
        if (p && p.entity !== undefined) {
          var name = entities[p.entity] || p.entity;
          detail = name + " " + fmtNumber(p.done, lang) + (p.total ? " / " + fmtNumber(p.total, lang) : "");
        }
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
      // The token matters only to a browser that sends neither Origin nor
      // Sec-Fetch-Site (the server's cross-site guard, rop/web/security.py).
      var token = document.querySelector('meta[name="rop-token"]');
      fetch(url, { method: "POST", headers: { "content-type": "application/json", "x-rop-token": token ? token.content : "" }, body: JSON.stringify({ full: false, wait: false }) })
        .then(function (r) {
          // 202: queued or started. 409 with a state: one already runs (follow it).
          // Anything else is refused: say why (rop/web/errors.py's JSON) and stop.
          if (r.status === 202) { poll(); return; }
          return r.json().then(function (e) {
            if (e.state !== undefined) { poll(); return; }
            out.textContent = box.dataset.failed + ": " + (e.error && e.error.message ? e.error.message : r.status);
            button.disabled = false;
          }, function () { out.textContent = box.dataset.failed + ": " + r.status; button.disabled = false; });
        });
    });
    if (box.dataset.state === "running") { button.disabled = true; poll(); }
  }

  function fmtNumber(v, lang) {
    return new Intl.NumberFormat(lang === "en" ? "en-US" : "ru-RU", { maximumFractionDigits: 0 }).format(v);
  }

  // Axis dates: 01.10 on a Russian page, Oct 1 on an English one.
  function fmtDay(iso, lang) {
    var p = iso.split("-");
    if (lang === "ru") { return p[2] + "." + p[1]; }
    var d = new Date(Date.UTC(+p[0], +p[1] - 1, +p[2]));
    return d.toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
  }
  // A CRM name on a picture (axis label, tooltip) between FIRST STRONG ISOLATE
  // and POP DIRECTIONAL ISOLATE: a right-to-left override inside it cannot turn
  // the text around it (the page puts such names in <bdi>, rop/web/bidi.py).
  function isolate(name) { return "\u2068" + String(name == null ? "" : name).replace(/[\u2066-\u2069]/g, "") + "\u2069"; }
  function allZero(list) { return !list || list.every(function (v) { return !v; }); }
  function showEmpty(el, t) {
    el.classList.add("chart-empty");
    el.textContent = t.no_data;
  }

  // What a click on a picture lists: a funnel step's deals, a manager's won
  // deals, a day's (or week's) new, won or lost deals. The server built each
  // URL (rop/web/charts.py with_drill_links), so the list is what was counted.
  function chartDrill(kind, el, data, p) {
    if (kind === "funnel") {
      var step = data.funnels[Number(el.dataset.index)].steps[p.dataIndex];
      return step && step.drill;
    }
    if (kind === "bars") { return (data.bars.drill || [])[p.dataIndex]; }
    if (kind === "trend") {
      var series = ["new", "won", "lost"][p.seriesIndex];
      return data.trend.drill && series && data.trend.drill[series][p.dataIndex];
    }
    if (kind === "weekly") {
      var name = WEEKLY_SERIES.filter(function (s) { return data.weekly[s]; })[p.seriesIndex];
      return data.weekly.drill && name && data.weekly.drill[name][p.dataIndex];
    }
    return null;
  }

  // A manager's last 12 weeks (issue 15): new, won, lost deals and calls per week.
  var WEEKLY_SERIES = ["new", "won", "lost", "calls"];
  var WEEKLY_COLORS = { "new": "#2fc6f6", won: "#9dcf00", lost: "#ff5752", calls: "#ffa900" };

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
      // A picture of nothing (a period without deals) says so instead of empty axes.
      var empty = (kind === "funnel" && allZero(data.funnels[Number(el.dataset.index)].steps.map(function (s) { return s.count; })))
        || (kind === "bars" && allZero(data.bars.won_amount) && allZero(data.bars.win_rate))
        || (kind === "trend" && allZero(data.trend.new) && allZero(data.trend.won) && allZero(data.trend.lost))
        || (kind === "weekly" && WEEKLY_SERIES.every(function (s) { return allZero(data.weekly[s]); }));
      if (empty) { showEmpty(el, t); return; }
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
          yAxis: { type: "category", inverse: true, data: steps.map(function (s) { return isolate(s.name); }) },
          series: [{ type: "bar", data: steps.map(function (s) { return s.count; }), itemStyle: { color: "#2fc6f6" },
            label: { show: true, position: "right", formatter: function (p) {
              var c = steps[p.dataIndex].conversion;
              return fmtNumber(p.value, t.lang) + (c == null ? "" : "  (" + Math.round(c * 100) + "%)");
            } } }]
        };
      } else if (kind === "bars") {
        var b = data.bars;
        var names = (b["names_" + t.lang] || b.names.map(function (n, i) { return n == null ? t.user + " #" + b.user_ids[i] : n; })).map(isolate);
        option = {
          animation: false,
          tooltip: { trigger: "axis" },
          legend: { data: [t.won_amount, t.win_rate], top: 0 },
          grid: { left: 70, right: 50, top: 30, bottom: 80 },
          xAxis: { type: "category", data: names, axisLabel: { rotate: 35, interval: 0, fontSize: 10 } },
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
          xAxis: { type: "category", data: tr.labels.map(function (d) { return fmtDay(d, t.lang); }) },
          yAxis: { type: "value" },
          series: [{ name: t.new, type: "line", data: tr.new, itemStyle: { color: "#2fc6f6" } },
                   { name: t.won, type: "line", data: tr.won, itemStyle: { color: "#9dcf00" } },
                   { name: t.lost, type: "line", data: tr.lost, itemStyle: { color: "#ff5752" } }]
        };
        if (tr.plan_won) {
          // The plan line (issue 13): won deals planned per day or week.
          var planName = tr.plan_label[t.lang] || tr.plan_label.en;
          option.legend.data.push(planName);
          option.series.push({ name: planName, type: "line", data: tr.plan_won,
                               lineStyle: { type: "dashed" }, itemStyle: { color: "#888888" } });
        }
      }
      if (kind === "weekly") {
        var wk = data.weekly;
        var shown = WEEKLY_SERIES.filter(function (s) { return wk[s]; });
        option = {
          animation: false,
          tooltip: { trigger: "axis" },
          legend: { data: shown.map(function (s) { return t[s]; }), top: 0 },
          grid: { left: 40, right: 15, top: 28, bottom: 22 },
          xAxis: { type: "category", data: wk.weeks.map(function (w) { return fmtDay(w[0], t.lang); }) },
          yAxis: { type: "value", minInterval: 1 },
          series: shown.map(function (s) {
            return { name: t[s], type: "line", data: wk[s], itemStyle: { color: WEEKLY_COLORS[s] } };
          })
        };
      }
      if (option) {
        chart.setOption(option);
        chart.on("click", function (p) {
          var href = chartDrill(kind, el, data, p);
          if (href) { openDrill(href, el); }
        });
        made.push(chart);
      }
    });
    window.addEventListener("resize", function () { made.forEach(function (c) { c.resize(); }); });
    // Print lays the page out narrower (A4): redraw the pictures to the printed width.
    window.addEventListener("beforeprint", function () { made.forEach(function (c) { c.resize(); }); });
    window.addEventListener("afterprint", function () { made.forEach(function (c) { c.resize(); }); });
  }

  // Stage analytics: the movement matrix as a heatmap (a click opens the cell's
  // records, the same URL as the table's link) and time in stage as bars.
  var DIRECTION_COLORS = { forward: "#9dcf00", backward: "#ff5752", stay: "#ffa900",
    won: "#2fc6f6", lost: "#a8adb4", "in": "#c3e6f7", out: "#d5d7db" };
  function stageCharts() {
    if (typeof echarts === "undefined") { return; }
    var dataEl = document.getElementById("stages-data");
    if (!dataEl) { return; }
    var blocks = JSON.parse(dataEl.textContent);
    var made = [];
    document.querySelectorAll("[data-stage-chart]").forEach(function (el) {
      var b = blocks[Number(el.dataset.index)];
      var chart = echarts.init(el, null, { renderer: "svg" });
      if (el.dataset.stageChart === "matrix") {
        el.style.height = Math.max(160, 40 + 32 * b.rows.length) + "px";
        chart.resize();
        var max = Math.max.apply(null, b.cells.map(function (c) { return c.count; }).concat([1]));
        chart.setOption({
          animation: false,
          tooltip: { formatter: function (p) {
            var c = b.cells[p.dataIndex];
            return b.rows[c.y].name + " → " + b.cols[c.x].name + ": " + c.count;
          } },
          grid: { left: 170, right: 20, top: 10, bottom: 60 },
          xAxis: { type: "category", data: b.cols.map(function (c) { return c.name; }),
                   axisLabel: { rotate: 25, interval: 0, fontSize: 10 } },
          yAxis: { type: "category", inverse: true, data: b.rows.map(function (r) { return r.name; }) },
          series: [{ type: "heatmap", label: { show: true },
            data: b.cells.map(function (c) {
              return { value: [c.x, c.y, c.count], itemStyle: { color: DIRECTION_COLORS[c.direction] || "#ccc",
                opacity: 0.35 + 0.65 * c.count / max } };
            }) }]
        });
        chart.on("click", function (p) { openDrill(b.cells[p.dataIndex].href); });
      } else {
        var names = b.time.map(function (s) { return s.name; });
        chart.setOption({
          animation: false,
          tooltip: { trigger: "axis" },
          grid: { left: 170, right: 40, top: 10, bottom: 20 },
          xAxis: { type: "value" },
          yAxis: { type: "category", inverse: true, data: names },
          series: [{ type: "bar", data: b.time.map(function (s) {
            return { value: s.mean_days == null ? 0 : Math.round(s.mean_days * 10) / 10,
                     itemStyle: { color: s.bottleneck ? "#ff5752" : "#2fc6f6" } };
          }), label: { show: true, position: "right" } }]
        });
        chart.on("click", function (p) { openDrill(b.time[p.dataIndex].href); });
      }
      made.push(chart);
      el.__ropChart = chart;
    });
    window.addEventListener("resize", function () { made.forEach(function (c) { c.resize(); }); });
  }

  // The stage section comes when first opened (rop/web/stages_section.py): draw it then.
  document.addEventListener("htmx:afterSwap", function (e) {
    if (e.detail && e.detail.target && e.detail.target.id === "stages-body") { stageCharts(); }
  });

  // A field the server marked as the bad one stops being marked once edited.
  document.addEventListener("input", function (e) {
    var el = e.target;
    if (el && el.getAttribute && el.getAttribute("aria-invalid") === "true") { el.removeAttribute("aria-invalid"); }
  });

  // The quality panel: the reader picks which checks' columns to show (kept in
  // this browser); the panel comes by htmx, so it is set up after every swap.
  var QUALITY_HIDDEN = "rop.quality.hidden";
  function qualityHidden() {
    try { var got = JSON.parse(window.localStorage.getItem(QUALITY_HIDDEN) || "[]"); return Array.isArray(got) ? got : []; }
    catch (err) { return []; }
  }
  function qualityApply(hidden) {
    document.querySelectorAll("#quality-table [data-check]").forEach(function (el) {
      el.hidden = hidden.indexOf(el.getAttribute("data-check")) >= 0;
    });
  }
  function qualityPick() {
    var pick = document.getElementById("quality-pick");
    if (!pick || pick.getAttribute("data-ready")) { return; }
    pick.setAttribute("data-ready", "1");
    var hidden = qualityHidden();
    pick.querySelectorAll("input[type=checkbox]").forEach(function (box) { box.checked = hidden.indexOf(box.value) < 0; });
    qualityApply(hidden);
  }
  document.addEventListener("change", function (e) {
    var box = e.target;
    if (!box || !box.closest || !box.closest("#quality-pick")) { return; }
    var hidden = [];
    document.querySelectorAll("#quality-pick input[type=checkbox]").forEach(function (b) { if (!b.checked) { hidden.push(b.value); } });
    try { window.localStorage.setItem(QUALITY_HIDDEN, JSON.stringify(hidden)); } catch (err) { /* private mode: this page only */ }
    qualityApply(hidden);
  });
  document.addEventListener("htmx:afterSettle", qualityPick);

  // The manager's page prints on one A4 sheet (app.css @media print).
  function printButton() {
    var button = document.getElementById("print-page");
    if (button) { button.addEventListener("click", function () { window.print(); }); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    printButton();
    periodPicker();
    datePickers();
    sectionNav();
    pickers();
    pickerSearch();
    syncButton();
    charts();
    drillFromUrl();
    stageCharts();
    qualityPick();
  });
})();
