/* livetopic's charts: time series as lines or stacked areas in an <svg>, with axes, a hover read-out and
   one colour per topic. No dependencies; used by the dashboard and inlined into `livetopic report`'s HTML.

   LTChart.draw(svg, data, options)
     data:    {start, step, series: [{name, color, values: [number…], dashed?, width?}]}   (start/step in ms, or in
              seconds with options.x = "offset")
     options: {mode: "lines" | "stacked", x: "clock" | "offset", unit: "/min", height: 300}
   Each series' path carries data-series (its name) and data-max (its largest value), so tests can read
   what was drawn. */
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#8c564b",
                 "#bcbd22", "#393b79", "#7f7f7f", "#637939"];

  function color(i) { return PALETTE[((i % PALETTE.length) + PALETTE.length) % PALETTE.length]; }

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var key in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, key)) node.setAttribute(key, attrs[key]); }
    if (parent) parent.appendChild(node);
    return node;
  }

  /* An HTML element (the pages' helper): <tag class=cls>content</tag>, appended to parent. */
  function make(tag, cls, parent, content) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content !== undefined) node.textContent = content;
    if (parent) parent.appendChild(node);
    return node;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function fmtOffset(seconds) {
    var s = Math.max(0, Math.round(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
  }

  function fmtClock(ms, withSeconds) {
    var d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (withSeconds ? ":" + pad(d.getSeconds()) : "");
  }

  function niceStep(range, ticks) {
    var raw = range / Math.max(1, ticks), mag = Math.pow(10, Math.floor(Math.log10(raw || 1))), f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }

  function fmtNumber(v) {
    if (v >= 1000) return (v / 1000).toFixed(v >= 10000 ? 0 : 1) + "k";
    return v >= 10 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1);
  }

  function stackedValues(series) {
    var sums = null;
    return series.map(function (s) {
      var top = s.values.map(function (v, i) { return v + (sums ? sums[i] : 0); });
      var out = {bottom: sums || s.values.map(function () { return 0; }), top: top};
      sums = top;
      return out;
    });
  }

  function draw(svg, data, options) {
    var opts = options || {};
    var mode = opts.mode === "stacked" ? "stacked" : "lines";
    var offset = opts.x === "offset";
    var width = svg.clientWidth || (svg.parentNode && svg.parentNode.clientWidth) || 800;
    var height = opts.height || 300;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    var m = {left: 48, right: 12, top: 10, bottom: 26};
    var pw = Math.max(10, width - m.left - m.right), ph = Math.max(10, height - m.top - m.bottom);
    var series = (data.series || []).filter(function (s) { return !s.hidden; });
    var n = series.length ? series[0].values.length : 0;
    var drawn = mode === "stacked" ? series.filter(function (s) { return !s.dashed; }) : series;
    var stack = mode === "stacked" ? stackedValues(drawn) : null;
    var max = 0;
    drawn.forEach(function (s, k) {
      var values = stack ? stack[k].top : s.values;
      values.forEach(function (v) { if (v > max) max = v; });
    });
    var step = niceStep(max || 1, 5), top = Math.max(step, Math.ceil((max || 1) / step) * step);
    function x(i) { return m.left + (n <= 1 ? pw / 2 : (i / (n - 1)) * pw); }
    function y(v) { return m.top + ph - (v / top) * ph; }
    var axis = el("g", {"class": "axis"}, svg);
    for (var t = 0; t <= top + 1e-9; t += step) {
      el("line", {x1: m.left, x2: m.left + pw, y1: y(t), y2: y(t), "class": "grid"}, axis);
      el("text", {x: m.left - 6, y: y(t) + 4, "text-anchor": "end"}, axis).textContent = fmtNumber(t);
    }
    var ticks = Math.min(n, Math.max(2, Math.floor(pw / 90)));
    var totalSpan = (n - 1) * data.step;
    for (var k = 0; k < ticks && n > 1; k++) {
      var i = Math.round((k / (ticks - 1)) * (n - 1));
      var at = data.start + i * data.step;
      var label = offset ? fmtOffset(at) : fmtClock(at, totalSpan < 10 * 60000);
      el("text", {x: x(i), y: m.top + ph + 18, "text-anchor": k === 0 ? "start" : k === ticks - 1 ? "end" : "middle"},
         axis).textContent = label;
    }
    var plot = el("g", {"class": "plot"}, svg);
    drawn.forEach(function (s, k) {
      var values = stack ? stack[k].top : s.values;
      var pts = values.map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); });
      var peak = Math.max.apply(null, s.values.concat([0]));
      if (stack) {
        var low = stack[k].bottom.map(function (v, i) { return x(i).toFixed(1) + "," + y(v).toFixed(1); }).reverse();
        el("path", {d: "M" + pts.join("L") + "L" + low.join("L") + "Z", fill: s.color, "fill-opacity": 0.75,
                    stroke: s.color, "stroke-width": 0.5, "data-series": s.name, "data-max": peak}, plot);
      } else {
        el("path", {d: "M" + pts.join("L"), fill: "none", stroke: s.color, "stroke-width": s.width || (s.dashed ? 1 : 1.8),
                    "stroke-dasharray": s.dashed ? "4 3" : "none", "data-series": s.name, "data-max": peak}, plot);
      }
    });
    addHover(svg, data, drawn, {x: x, m: m, pw: pw, ph: ph, n: n, offset: offset, unit: opts.unit || ""});
  }

  function addHover(svg, data, series, g) {
    if (g.n < 1) return;
    var cursor = el("line", {y1: g.m.top, y2: g.m.top + g.ph, "class": "cursor", visibility: "hidden"}, svg);
    var box = el("g", {"class": "readout", visibility: "hidden"}, svg);
    var bg = el("rect", {rx: 3, ry: 3}, box);
    var lines = el("text", {}, box);
    el("rect", {x: g.m.left, y: g.m.top, width: g.pw, height: g.ph, fill: "transparent", "class": "hover"}, svg)
      .addEventListener("mousemove", function (ev) {
        var rect = svg.getBoundingClientRect();
        var px = (ev.clientX - rect.left) * (svg.viewBox.baseVal.width / rect.width);
        var i = Math.max(0, Math.min(g.n - 1, Math.round(((px - g.m.left) / g.pw) * (g.n - 1))));
        var at = data.start + i * data.step;
        cursor.setAttribute("x1", g.x(i)); cursor.setAttribute("x2", g.x(i));
        cursor.setAttribute("visibility", "visible");
        while (lines.firstChild) lines.removeChild(lines.firstChild);
        var rows = [(g.offset ? fmtOffset(at) : fmtClock(at, true))].concat(series.map(function (s) {
          return "\u2068" + s.name + "\u2069  " + fmtNumber(s.values[i]) + g.unit;  // the name isolated (FSI … PDI)
        }));
        rows.forEach(function (row, r) {
          el("tspan", {x: 8, dy: r === 0 ? 16 : 15}, lines).textContent = row;
        });
        var w = 8 + 7.5 * Math.max.apply(null, rows.map(function (r) { return r.length; })) + 8;
        var left = g.x(i) + 10 + w > g.m.left + g.pw ? g.x(i) - 10 - w : g.x(i) + 10;
        bg.setAttribute("width", w); bg.setAttribute("height", 8 + 15 * rows.length);
        box.setAttribute("transform", "translate(" + left + "," + (g.m.top + 4) + ")");
        box.setAttribute("visibility", "visible");
      });
    svg.lastChild.addEventListener("mouseleave", function () {
      cursor.setAttribute("visibility", "hidden"); box.setAttribute("visibility", "hidden");
    });
  }

  global.LTChart = {draw: draw, color: color, make: make, fmtOffset: fmtOffset, fmtClock: fmtClock,
                    fmtNumber: fmtNumber};
})(window);
