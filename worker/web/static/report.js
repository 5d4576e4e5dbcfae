/* `livetopic report`'s HTML: draws the data embedded in the page (#report-data) with LTChart. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var root = document.getElementById("report");
  var runs = data.runs, first = runs[0], labels = first.labels;

  var make = LTChart.make;

  function svg(parent) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    parent.appendChild(node);
    return node;
  }

  function color(label) { return LTChart.color(labels.indexOf(label)); }
  function pct(v) { return (100 * v).toFixed(1) + "%"; }
  var charts = [];

  function chart(parent, series, height) {
    var node = svg(parent);
    var spec = {data: {start: first.start + first.step, step: first.step, series: series},
                options: {mode: "lines", x: "offset", unit: "/min", height: height}};
    charts.push([node, spec]);
    return node;
  }

  function header() {
    make("h1", "", root, data.title);
    make("p", "meta", root, "topic heat in comments per minute, rolling " + first.window + " s window · " +
         first.comments + " comments · " + data.time_axis + " · " + runs.map(function (r) { return r.name; }).join(" vs "));
  }

  function overviews() {
    var section = make("section", "overviews", root);
    runs.forEach(function (run) {
      var card = make("div", "card", section);
      make("h2", "", card, run.name);
      chart(card, labels.filter(function (l) { return run.heat[l]; }).map(function (label) {
        return {name: label, color: color(label), values: run.heat[label]};
      }), 260).setAttribute("data-run", run.name);
      var legend = make("div", "legend", card);
      labels.forEach(function (label) {
        var chip = make("span", "chip", legend, label);
        chip.style.borderColor = color(label);
      });
    });
  }

  function shares() {
    var section = make("section", "card", root);
    make("h2", "", section, "Topic shares");
    var table = make("table", "shares", section);
    var head = make("tr", "", make("thead", "", table));
    make("th", "", head, "topic");
    runs.forEach(function (run) { make("th", "num", head, run.name); });
    if (runs.length > 1) make("th", "num", head, "heat correlation r");
    var body = make("tbody", "", table);
    labels.forEach(function (label) {
      var row = make("tr", "", body);
      row.setAttribute("data-label", label);
      var name = make("td", "", row);
      make("span", "dot", name).style.backgroundColor = color(label);
      make("span", "", name, label);
      runs.forEach(function (run) {
        var cell = make("td", "num", row, run.shares[label] === undefined ? "–" :
                        pct(run.shares[label]) + " (" + run.counts[label] + ")");
        cell.setAttribute("data-count", run.counts[label] || 0);
      });
      if (runs.length > 1) {
        var r = data.correlation[label];
        make("td", "num", row, r === null || r === undefined ? "–" : r.toFixed(2));
      }
    });
  }

  function peaks(parent, run, label) {
    var list = run.peaks[label] || [];
    var box = make("div", "peaks", parent);
    make("h4", "", box, run.name);
    if (!list.length) { make("p", "muted", box, "no peak"); return; }
    list.forEach(function (peak) {
      var item = make("div", "peak", box);
      make("div", "when", item, LTChart.fmtOffset(peak.offset) + " · " + peak.per_min + " comments/min");
      var ol = make("ol", "", item);
      peak.top.forEach(function (c) {
        var li = make("li", "", ol);
        make("span", "text", li, c.text).setAttribute("dir", "auto");  // isolated: report.css
        var meta = make("span", "muted", li, " " + LTChart.fmtOffset(c.offset));
        if (c.user) {
          meta.appendChild(document.createTextNode(" · "));
          make("bdi", "user", meta, c.user);
        }
        if (c.score !== null && c.score !== undefined) meta.appendChild(document.createTextNode(" · " + c.score.toFixed(2)));
      });
    });
  }

  function topics() {
    var section = make("section", "topics", root);
    labels.forEach(function (label) {
      var card = make("div", "card topic", section);
      card.setAttribute("data-label", label);
      var title = make("h3", "", card, label);
      title.style.color = color(label);
      chart(card, runs.map(function (run, r) {
        return {name: run.name, color: r === 0 ? color(label) : "#333", dashed: r > 0, width: r > 0 ? 1.4 : 1.8,
                values: run.heat[label] || []};
      }), 180);
      var row = make("div", "peak-row", card);
      runs.forEach(function (run) { peaks(row, run, label); });
    });
  }

  function drawAll() {
    charts.forEach(function (c) { LTChart.draw(c[0], c[1].data, c[1].options); });
  }

  header();
  overviews();
  shares();
  topics();
  drawAll();
  window.addEventListener("resize", drawAll);
})();
