"use strict";
(function () {
  // Sorting: click a header of any table.sortable; numeric columns carry data-type="num".
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var text = cell ? cell.textContent.trim() : "";
    if (!numeric) return text.toLowerCase();
    var n = parseFloat(text.replace(/[^0-9.\-]/g, ""));
    return isNaN(n) ? null : n;
  }

  function compare(a, b, numeric) {
    if (a === b) return 0;
    if (a === null || a === "") return 1;  // empty cells last, whatever the direction
    if (b === null || b === "") return -1;
    if (numeric) return a - b;
    return a.localeCompare(b, undefined, { numeric: true });
  }

  function sortBy(table, th) {
    var headers = th.parentNode.cells;
    var index = Array.prototype.indexOf.call(headers, th);
    var numeric = th.getAttribute("data-type") === "num";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var keyed = Array.prototype.map.call(body.rows, function (row, i) {
      return { row: row, key: cellValue(row, index, numeric), i: i };
    });
    keyed.sort(function (x, y) {
      var emptyX = x.key === null || x.key === "", emptyY = y.key === null || y.key === "";
      if (emptyX !== emptyY) return emptyX ? 1 : -1;
      var c = compare(x.key, y.key, numeric);
      return (ascending ? c : -c) || x.i - y.i;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) { fragment.appendChild(k.row); });
    body.appendChild(fragment);
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) return;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.setAttribute("tabindex", "0");
      th.setAttribute("title", "Sort by " + th.textContent.trim());
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th); }
      });
    });
  });

  // Filtering the exceptions table: free text, reason and side.
  var table = document.getElementById("exceptions-table");
  if (!table) return;
  var text = document.getElementById("exc-filter");
  var reason = document.getElementById("exc-reason");
  var side = document.getElementById("exc-side");
  var count = document.getElementById("exc-count");
  var rows = Array.prototype.slice.call(table.tBodies[0].rows);
  var haystack = rows.map(function (r) { return r.textContent.toLowerCase(); });
  var total = rows.length;

  function apply() {
    var needles = text.value.toLowerCase().split(/\s+/).filter(Boolean);
    var wantReason = reason.value, wantSide = side.value, shown = 0;
    rows.forEach(function (row, i) {
      var ok = (!wantReason || row.getAttribute("data-reason") === wantReason) &&
               (!wantSide || row.getAttribute("data-side") === wantSide) &&
               needles.every(function (n) { return haystack[i].indexOf(n) !== -1; });
      row.hidden = !ok;
      if (ok) shown += 1;
    });
    count.textContent = shown === total
      ? total.toLocaleString("en") + " rows"
      : shown.toLocaleString("en") + " of " + total.toLocaleString("en") + " rows";
  }

  var timer = null;
  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(apply, total > 1000 ? 120 : 0);
  });
  reason.addEventListener("change", apply);
  side.addEventListener("change", apply);
})();
