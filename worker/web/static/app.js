/* The dashboard page: one Server-Sent Events stream for the selected channel and window; each message is
   the whole view (channels, heat series, counts, feed, health), drawn as it comes. */
(function () {
  "use strict";
  var state = {channel: "", window: "15m", layer: "", mode: "lines", paused: false, held: null, source: null, view: null};
  var $ = function (id) { return document.getElementById(id); };

  function channelName(name) { return name === "" ? "All channels" : name; }

  function text(node, value) { node.textContent = value; return node; }

  /* Text from the streams (channel and user names, comments, topics, model tags) is isolated: dir="auto" takes its
     direction from its own first letter, and no right-to-left letter or unclosed override in it can reorder what
     is laid out after it (style.css: unicode-bidi: isolate). */
  function isolate(node) { node.setAttribute("dir", "auto"); return node; }

  /* "a, b, c" with each part isolated. */
  function isolatedList(node, parts) {
    node.textContent = "";
    parts.forEach(function (part, i) {
      if (i) node.appendChild(document.createTextNode(", "));
      isolate(make("bdi", "", node, part));
    });
    return node;
  }

  var make = LTChart.make;

  function colorOf(label) {
    var labels = state.view ? state.view.labels : [];
    return LTChart.color(labels.indexOf(label));
  }

  function connect() {
    if (state.source) state.source.close();
    var url = "/events?channel=" + encodeURIComponent(state.channel) + "&window=" + encodeURIComponent(state.window);
    var source = new EventSource(url);
    source.onopen = function () { setStatus(true); };
    source.onerror = function () {
      setStatus(false);
      // refused (503: the dashboard serves --max-clients pages at most): EventSource gives up; try again later
      if (source.readyState === EventSource.CLOSED && state.source === source) setTimeout(function () {
        if (state.source === source) connect();
      }, 10000);
    };
    source.onmessage = function (ev) { render(JSON.parse(ev.data)); };
    state.source = source;
    markButtons();
  }

  function setStatus(live) {
    var node = $("status");
    node.className = "status " + (live ? "on" : "off");
    text(node, live ? "live" : "reconnecting…");
  }

  function markButtons() {
    document.querySelectorAll("#windows button").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-window") === state.window);
    });
    document.querySelectorAll("#modes button").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-mode") === state.mode);
    });
  }

  function renderChannels(view) {
    var list = $("channels");
    list.textContent = "";
    view.channels.forEach(function (c) {
      var li = make("li", c.name === state.channel ? "selected" : "", list);
      li.setAttribute("data-channel", c.name);
      li.setAttribute("data-total", c.total);
      isolate(make("span", "name", li, channelName(c.name)));
      make("span", "rate", li, c.rate + "/min");
      make("span", "total", li, String(c.total));
      li.addEventListener("click", function () { select(c.name); });
    });
    var cut = view.cut ? view.cut.channels : 0;  // left out to keep the view under its size limit
    if (cut) make("li", "more", list, "+" + cut + " more channels (too long to list)");
  }

  function renderHeat(view) {
    var series = view.labels.map(function (label) {
      return {name: label, color: colorOf(label), values: view.series.labels[label] || []};
    });
    series.push({name: "all comments", color: "#888", dashed: true, values: view.series.comments});
    LTChart.draw($("heat"), {start: view.series.start, step: view.series.step, series: series},
                 {mode: state.mode, x: "clock", unit: "/min", height: 300});
    var legend = $("legend");
    legend.textContent = "";
    view.labels.forEach(function (label) {
      var item = isolate(make("span", "chip", legend, label));
      item.style.borderColor = colorOf(label);
      item.style.backgroundColor = colorOf(label) + "22";
    });
  }

  function renderShares(view) {
    var total = view.counts.comments, body = document.querySelector("#shares tbody"), bar = $("share-bar");
    body.textContent = "";
    bar.textContent = "";
    text($("share-window"), state.window === "all" ? "(whole stream)" : "(last " + state.window.replace("m", " min") + ")");
    var labelled = view.labels.reduce(function (s, l) { return s + (view.counts.labels[l] || 0); }, 0);
    view.labels.forEach(function (label) {
      var count = view.counts.labels[label] || 0;
      var row = make("tr", "", body);
      row.setAttribute("data-label", label);
      row.setAttribute("data-count", count);
      var name = make("td", "", row);
      var dot = make("span", "dot", name);
      dot.style.backgroundColor = colorOf(label);
      isolate(make("span", "label", name, label));
      make("td", "num", row, String(count));
      make("td", "num", row, total ? (100 * count / total).toFixed(1) + "%" : "–");
      if (labelled && count) {
        var part = make("span", "", bar);
        part.style.width = (100 * count / labelled) + "%";
        part.style.backgroundColor = colorOf(label);
        part.title = label + " " + (100 * count / labelled).toFixed(1) + "% of labels";
      }
    });
    var foot = $("comments-total");
    foot.setAttribute("data-comments", total);
    text(foot, String(total));
  }

  function renderFeed(view) {
    var list = $("feed");
    if (state.paused) {
      state.held = view;
      text($("feed-state"), "paused (mouse over the feed)");
      return;
    }
    var cut = view.cut ? view.cut.feed : 0;  // left out to keep the view under its size limit
    text($("feed-state"), "newest on top" + (cut ? " · " + cut + " older ones too long to show" : ""));
    list.textContent = "";
    view.feed.forEach(function (item) {
      var li = make("li", "", list);
      li.setAttribute("data-id", item.id);
      var meta = make("div", "meta", li);
      make("span", "time", meta, LTChart.fmtClock(item.time, true));
      if (state.channel === "") isolate(make("span", "channel", meta, item.channel));
      if (item.user) isolate(make("span", "user", meta, item.user));
      var body = make("div", item.missing ? "text missing" : "text", li,
                      item.missing ? "(text no longer in the input stream)" : item.text);
      if (!item.missing) isolate(body);
      body.setAttribute("lang", "zh-Hant");
      var chips = make("div", "chips", li);
      if (!item.labels.length) make("span", "chip none", chips, "no topic");
      item.labels.forEach(function (label) {
        var chip = isolate(make("span", "chip", chips, label));
        chip.setAttribute("data-label", label);
        chip.style.borderColor = colorOf(label);
        chip.style.backgroundColor = colorOf(label) + "22";
      });
    });
  }

  function fmtMs(v) { return v === null || v === undefined ? "–" : Math.round(v) + " ms"; }

  function renderHealth(h) {
    text($("h-redis"), h.redis ? (h.loading ? "reading history…" : "ok") : "unreachable").className = h.redis ? "" : "bad";
    var g = h.group;
    text($("h-lag"), !g.exists ? "no group" : g.lag === null ? "–" : (g.lag_capped ? "≥ " : "") + g.lag);
    text($("h-pending"), g.exists ? String(g.pending) : "–");
    text($("h-dead"), h.dead_per_min === null ? "–" : String(h.dead_per_min)).className = h.dead_per_min ? "bad" : "";
    text($("h-latency"), fmtMs(h.latency_ms.p50) + " / " + fmtMs(h.latency_ms.p99));
    var models = Object.keys(h.models);
    if (models.length) isolatedList($("h-models"), models); else text($("h-models"), "–");
    text($("h-ingested"), h.ingested + (h.malformed ? " (" + h.malformed + " malformed)" : "") +
      (h.retracted ? " (" + h.retracted + " retracted)" : ""));
  }

  // A pipeline's layers (the first stage's labels, then each further stage's, counted as "stage:Label"): one
  // button each, shown once there is more than one; the chart, shares and feed chips show the chosen layer's.
  function renderLayers(view) {
    var names = Object.keys(view.layers || {"": []}), box = $("layers");
    box.hidden = names.length < 2;
    if (names.indexOf(state.layer) < 0) state.layer = "";
    box.textContent = "";
    names.forEach(function (name) {
      var b = isolate(make("button", name === state.layer ? "active" : "", box, name === "" ? "topics" : name));
      b.addEventListener("click", function () { state.layer = name; if (state.raw) render(state.raw); });
    });
  }

  function layerView(view) {
    if (!view.layers) return view;
    var names = view.layers[state.layer] || view.layers[""] || [];
    var feed = view.feed.map(function (item) {
      return Object.assign({}, item, {labels: item.labels.filter(function (l) { return names.indexOf(l) >= 0; })});
    });
    return Object.assign({}, view, {labels: names, feed: feed});
  }

  function render(raw) {
    if (raw.channel !== state.channel || raw.window !== state.window) return;  // an old stream's message
    state.raw = raw;
    renderLayers(raw);
    var view = layerView(raw);
    state.view = view;
    text($("channel-title"), channelName(view.channel));
    document.title = "livetopic · \u2068" + channelName(view.channel) + "\u2069";  // FIRST STRONG ISOLATE … POP
    renderChannels(view);
    renderHeat(view);
    renderShares(view);
    renderFeed(view);
    renderHealth(view.health);
  }

  function select(channel) {
    state.channel = channel;
    connect();
  }

  document.querySelectorAll("#windows button").forEach(function (b) {
    b.addEventListener("click", function () { state.window = b.getAttribute("data-window"); connect(); });
  });
  document.querySelectorAll("#modes button").forEach(function (b) {
    b.addEventListener("click", function () {
      state.mode = b.getAttribute("data-mode");
      markButtons();
      if (state.view) renderHeat(state.view);
    });
  });
  var feed = $("feed-panel");
  feed.addEventListener("mouseenter", function () {
    state.paused = true;
    text($("feed-state"), "paused (mouse over the feed)");
  });
  feed.addEventListener("mouseleave", function () {
    state.paused = false;
    if (state.held) { renderFeed(state.held); state.held = null; }
  });
  window.addEventListener("resize", function () { if (state.view) renderHeat(state.view); });
  connect();
})();
