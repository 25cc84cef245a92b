// The flamegraph's viewer. The Go side defines fgConfig (layout) and puts
// the call tree in the JSON of #fg-data: per node in pre-order its frame,
// sample count and depth; per frame its name, file, line, kind and colour.
// Only frames wider than minWidth pixels at the current zoom become SVG
// elements, so that a tree of hundreds of thousands of nodes still opens
// quickly; zooming draws the finer ones.
(function () {
  "use strict";
  // JSON.parse is much faster than V8's parser on a literal this large.
  var C = fgConfig, D = JSON.parse(document.getElementById("fg-data").textContent);
  var NS = "http://www.w3.org/2000/svg";
  var strs = D.s, fn = D.fn, ff = D.ff, fl = D.fl, fk = D.fk, fc = D.fc;
  var n = D.n, nframes = fn.length;

  // The node arrays come as base-64 VLQ strings (see writeData).
  var digit = new Int8Array(128);
  var VLQ = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (var k = 0; k < 64; k++) digit[VLQ.charCodeAt(k)] = k;
  function vlq(s, out) {
    var j = 0, v = 0, m = 1;
    for (var i = 0; i < s.length; i++) {
      var d = digit[s.charCodeAt(i)];
      if (d >= 32) {
        v += (d - 32) * m;
        m *= 32;
      } else {
        out[j++] = v + d * m;
        v = 0;
        m = 1;
      }
    }
    return out;
  }
  var nf = vlq(D.nf, new Int32Array(n)), nc = vlq(D.nc, new Float64Array(n)), nd = vlq(D.nd, new Int32Array(n));
  for (var i0 = 0, prev = -1; i0 < n; i0++) {
    nf[i0]--;
    nd[i0] = prev = prev + 1 - nd[i0];
  }
  var total = n > 0 ? nc[0] : 0;

  // x offsets (in samples), parents and subtree ends follow from pre-order
  // and depth alone, so the file does not carry them.
  var x = new Float64Array(n), par = new Int32Array(n), end = new Int32Array(n);
  (function () {
    var next = [0], open = [];
    for (var i = 0; i < n; i++) {
      var d = nd[i];
      for (var k = open.length - 1; k >= d; k--) end[open[k]] = i;
      open.length = d;
      par[i] = d > 0 ? open[d - 1] : -1;
      open.push(i);
      x[i] = next[d];
      next[d] += nc[i];
      next[d + 1] = x[i];
    }
    for (var j = 0; j < open.length; j++) end[open[j]] = n;
  })();

  var labels = new Array(nframes), fills = new Array(nframes);
  // label matches Go's profile.Frame.String, which the search expects.
  function label(f) {
    if (f < 0) return "all";
    var l = labels[f];
    if (l === undefined) {
      l = strs[fn[f]];
      if (fk[f] === 0) l += " (" + strs[ff[f]] + (fl[f] ? ":" + fl[f] : "") + ")";
      labels[f] = l;
    }
    return l;
  }
  function fill(f) {
    if (f < 0) return C.rootFill;
    var s = fills[f];
    if (s === undefined) {
      s = "#" + (0x1000000 + fc[f]).toString(16).slice(1);
      fills[f] = s;
    }
    return s;
  }

  var framesG = document.getElementById("frames");
  var details = document.getElementById("details");
  var matchedT = document.getElementById("matched");
  var resetZoomT = document.getElementById("reset-zoom");
  var searchT = document.getElementById("search");
  var resetSearchT = document.getElementById("reset-search");
  var zoomed = 0, matched = null, lastTerm = "";
  var cw = C.fontSize * C.charWidth;

  function pct(a, b) {
    return (b > 0 ? 100 * a / b : 0).toFixed(2) + "%";
  }
  function fmtInt(v) {
    return String(v).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function show(el, on) {
    if (on) el.classList.remove("hidden");
    else el.classList.add("hidden");
  }
  function yOf(d) {
    return C.icicle ? C.top + d * C.fh : C.top + (C.maxDepth - d) * C.fh;
  }

  function draw(frag, i, rx, w, dim) {
    var y = yOf(nd[i]), f = nf[i];
    var r = document.createElementNS(NS, "rect");
    r.setAttribute("x", (C.pad + rx).toFixed(2));
    r.setAttribute("y", y);
    r.setAttribute("width", w.toFixed(2));
    r.setAttribute("height", C.fh - 1);
    r.setAttribute("fill", matched !== null && f >= 0 && matched[f] ? C.matchFill : fill(f));
    r.setAttribute("data-i", i);
    if (dim) r.setAttribute("class", "dim");
    frag.appendChild(r);
    var room = Math.floor((w - 6) / cw);
    if (room < 3) return;
    var l = label(f);
    if (l.length > room) {
      var cut = room - 2, c = l.charCodeAt(cut - 1);
      if (c >= 0xd800 && c < 0xdc00) cut--; // keep surrogate pairs whole
      l = l.slice(0, cut) + "..";
    }
    var t = document.createElementNS(NS, "text");
    t.setAttribute("x", (C.pad + rx + 3).toFixed(2));
    t.setAttribute("y", y + C.fh - 5);
    if (dim) t.setAttribute("class", "dim");
    t.textContent = l;
    frag.appendChild(t);
  }

  function render() {
    var frag = document.createDocumentFragment();
    if (total > 0) {
      var W = C.width - 2 * C.pad, scale = W / nc[zoomed], x0 = x[zoomed];
      // Ancestors of the zoomed frame span the width, dimmed.
      for (var a = par[zoomed]; a >= 0; a = par[a]) draw(frag, a, 0, W, true);
      var stop = end[zoomed];
      for (var i = zoomed; i < stop; ) {
        var w = nc[i] * scale;
        if (w < C.minWidth) {
          i = end[i]; // its children are narrower still
          continue;
        }
        draw(frag, i, (x[i] - x0) * scale, w, false);
        i++;
      }
    }
    framesG.textContent = "";
    framesG.appendChild(frag);
  }

  function info(i) {
    var c = nc[i];
    var s = label(nf[i]) + " \u2014 " + fmtInt(c) + (c === 1 ? " sample" : " samples") + " (" + pct(c, total);
    if (zoomed !== 0 && i >= zoomed && i < end[zoomed]) s += ", " + pct(c, nc[zoomed]) + " of zoomed";
    return s + ")";
  }

  function zoom(i) {
    if (!(i >= 0 && i < n)) return;
    zoomed = i;
    show(resetZoomT, i !== 0);
    details.textContent = " ";
    render();
  }
  function resetZoom() {
    zoom(0);
  }

  // search highlights the frames whose label matches re and reports the
  // share of samples under them, each sample counted once: below a match,
  // the subtree is skipped.
  function search(term) {
    if (term === null || term === undefined || term === "") {
      resetSearch();
      return;
    }
    var re;
    try {
      re = new RegExp(term);
    } catch (err) {
      matchedT.textContent = "Invalid regular expression: " + term;
      return;
    }
    lastTerm = term;
    matched = new Uint8Array(nframes);
    for (var f = 0; f < nframes; f++) matched[f] = re.test(label(f)) ? 1 : 0;
    var sum = 0;
    for (var i = 1; i < n; ) {
      if (matched[nf[i]]) {
        sum += nc[i];
        i = end[i];
      } else i++;
    }
    matchedT.textContent = "Matched: " + pct(sum, total);
    show(resetSearchT, true);
    render();
  }
  function resetSearch() {
    matched = null;
    matchedT.textContent = " ";
    show(resetSearchT, false);
    render();
  }
  function promptSearch() {
    var term = window.prompt("Search for a regular expression in \"function (file:line)\":", lastTerm);
    if (term !== null) search(term);
  }

  framesG.addEventListener("mouseover", function (e) {
    var r = e.target;
    if (r.localName !== "rect") return;
    var s = info(+r.getAttribute("data-i"));
    details.textContent = s;
    // The tooltip is made on first hover: a <title> per drawn frame
    // would double the elements to create on every render.
    if (!r.firstChild) {
      var t = document.createElementNS(NS, "title");
      t.textContent = s;
      r.appendChild(t);
    }
  });
  framesG.addEventListener("mouseout", function (e) {
    if (e.target.localName === "rect") details.textContent = " ";
  });
  framesG.addEventListener("click", function (e) {
    if (e.target.localName === "rect") zoom(+e.target.getAttribute("data-i"));
  });

  var actions = { "reset-zoom": resetZoom, "search": promptSearch, "reset-search": resetSearch };
  [resetZoomT, searchT, resetSearchT].forEach(function (el) {
    el.addEventListener("click", function () {
      actions[el.id]();
    });
  });
  document.addEventListener("keydown", function (e) {
    var id = e.target && e.target.id;
    if ((e.key === "Enter" || e.key === " ") && actions[id]) {
      e.preventDefault();
      actions[id]();
    } else if ((e.ctrlKey || e.metaKey) && (e.key === "f" || e.key === "F")) {
      e.preventDefault();
      promptSearch();
    } else if (e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey) {
      e.preventDefault();
      promptSearch();
    } else if (e.key === "Escape") {
      if (zoomed !== 0) resetZoom();
      else if (matched !== null) resetSearch();
    }
  });

  var api = {
    zoom: zoom,
    resetZoom: resetZoom,
    search: search,
    resetSearch: resetSearch,
    nodes: n,
    renderedAt: 0,
    paintedAt: 0
  };
  window.flamegraph = api;
  render();
  api.renderedAt = performance.now();
  // A timeout queued from the next animation frame runs after that
  // frame's paint: the time a reader first sees the graph.
  requestAnimationFrame(function () {
    setTimeout(function () {
      api.paintedAt = performance.now();
    }, 0);
  });
})();
