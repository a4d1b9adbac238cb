/* The plans page: a grid of monthly plans, saved as JSON POSTs (no inline script). */
(function () {
  "use strict";
  var wrap, lang, changed = {};

  function nf() { return new Intl.NumberFormat(lang === "ru" ? "ru-RU" : "en-US", { maximumFractionDigits: 2 }); }
  function show(v) { return v === null || v === undefined ? "" : nf().format(v); }
  function status(text) { document.getElementById("plans-status").textContent = text; }

  function url(base, extra) {
    var u = new URL(base, window.location.href);
    Object.keys(extra).forEach(function (k) { u.searchParams.set(k, extra[k]); });
    return u.toString();
  }

  function post(target, body) {
    return fetch(target, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || r.status); }
        return data;
      });
    });
  }

  function cell(text, tag) {
    var c = document.createElement(tag || "td");
    c.textContent = text;
    return c;
  }

  function load() {
    var year = document.getElementById("plans-year").value;
    var figure = document.getElementById("plans-figure").value;
    changed = {};
    return fetch(url(wrap.dataset.grid, { year: year, figure: figure }), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (g) {
        var table = document.getElementById("plans-grid");
        var head = document.createElement("tr");
        head.appendChild(cell("", "th"));
        g.months.forEach(function (m) { head.appendChild(cell(m, "th")); });
        table.tHead.replaceChildren(head);
        var body = table.tBodies[0];
        body.replaceChildren();
        g.rows.forEach(function (row) {
          var tr = document.createElement("tr");
          tr.className = row.subject === "department" ? "dept" : "";
          var name = cell(row.name || ("#" + row.id), "th");
          name.dir = "auto";
          tr.appendChild(name);
          row.plans.forEach(function (v, i) {
            var td = document.createElement("td");
            var input = document.createElement("input");
            input.type = "text";
            input.inputMode = "decimal";
            input.value = show(v);
            input.disabled = !row.editable;
            input.dataset.key = [row.subject, row.id, g.figure, g.months[i]].join("|");
            input.setAttribute("aria-label", (row.name || row.id) + " " + g.months[i]);
            input.addEventListener("change", function () { changed[input.dataset.key] = input.value; });
            td.appendChild(input);
            tr.appendChild(td);
          });
          body.appendChild(tr);
        });
      });
  }

  function save() {
    var entries = Object.keys(changed).map(function (key) {
      var p = key.split("|");
      return { subject: p[0], id: Number(p[1]), figure: p[2], period: p[3], value: changed[key].trim() || null };
    });
    if (!entries.length) { return; }
    post(wrap.dataset.save, { entries: entries }).then(function (r) {
      return load().then(function () {
        status((lang === "ru" ? "Сохранено: " : "Saved: ") + r.changed);
      });
    }).catch(function (e) { status(String(e.message)); });
  }

  function copy() {
    var month = document.getElementById("plans-month").value;
    if (!month) { return; }
    var d = new Date(month + "-01T00:00:00");
    d.setMonth(d.getMonth() - 1);
    var from = d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0");
    post(wrap.dataset.copy, { from: from, to: month }).then(function (r) {
      return load().then(function () {
        status((lang === "ru" ? "Скопировано: " : "Copied: ") + r.changed);
      });
    }).catch(function (e) { status(String(e.message)); });
  }

  function importFile(file) {
    var reader = new FileReader();
    reader.onload = function () {
      var data = String(reader.result).split(",")[1] || "";
      post(wrap.dataset["import"], { filename: file.name, data: data }).then(function (r) {
        return load().then(function () {
          status((lang === "ru" ? "Загружено: " : "Imported: ") + r.changed);
        });
      }).catch(function (e) { status(String(e.message)); });
    };
    reader.readAsDataURL(file);
  }

  function templateLink() {
    var a = document.getElementById("plans-template");
    var month = document.getElementById("plans-month").value;
    if (month) { a.href = url(a.dataset.base, { plan_period: month }); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    wrap = document.getElementById("plans-grid-wrap");
    if (!wrap) { return; }
    lang = wrap.dataset.lang;
    var now = new Date();
    document.getElementById("plans-year").value = now.getFullYear();
    document.getElementById("plans-month").value = now.getFullYear() + "-" + String(now.getMonth() + 1).padStart(2, "0");
    templateLink();
    document.getElementById("plans-year").addEventListener("change", load);
    document.getElementById("plans-figure").addEventListener("change", load);
    document.getElementById("plans-month").addEventListener("change", templateLink);
    document.getElementById("plans-save").addEventListener("click", save);
    document.getElementById("plans-copy").addEventListener("click", copy);
    document.getElementById("plans-file").addEventListener("change", function (e) {
      if (e.target.files.length) { importFile(e.target.files[0]); }
    });
    load().then(function () { wrap.dataset.ready = "1"; });
  });
})();
