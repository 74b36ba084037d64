/* dcsim report: draws every chart from the inlined data (no network), keeps each chart's
   table and CSV to exactly the columns its visible traces use, and runs the reform explorer. */
"use strict";
(function () {
  const timing = {script: performance.now()};  // Plotly's script parsed by now
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  timing.data = performance.now();
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
                   "#e377c2", "#17becf", "#7f7f7f", "#bcbd22", "#393b79"];
  const SYMBOLS = {input: "diamond", calibrated: "circle", predicted: "x"};
  const hasReforms = DATA.arms.length > 1;  // an ensemble has one arm and no explorer
  const state = {arm: DATA.default_arm, controls: {}, output: null};
  const charts = {};
  DATA.charts.forEach(c => { charts[c.id] = c; if (c.control) state.controls[c.id] = c.control.default; });

  function armWords(arm) {
    if (arm === DATA.baseline && hasReforms) return "baseline";
    const d = DATA.arm_descriptions[arm] || arm;
    return d.length > 48 ? d.slice(0, 45) + "..." : d;
  }
  // formatters made once (toLocaleString builds one per call, which is slow)
  const WHOLE = new Intl.NumberFormat("en-US", {maximumFractionDigits: 0});
  const THREE = new Intl.NumberFormat("en-US", {maximumSignificantDigits: 3});
  function fmt(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "-";
    const a = Math.abs(v);
    if (unit === "share") return (100 * v).toFixed(a < 0.1 ? 2 : 1) + "%";
    if (unit === "days") return WHOLE.format(v);
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e8 ? 0 : 2) + " million";
    if (a >= 100) return WHOLE.format(v);
    return THREE.format(v);
  }
  // month axes get their dates as milliseconds, converted once per chart (Plotly would
  // otherwise parse every date string of every trace)
  const xCache = {};
  function xOf(c) {
    if (c.x_label !== "month") return c.x;
    if (!xCache[c.id]) xCache[c.id] = c.x.map(d => Date.parse(d + "T00:00:00Z"));
    return xCache[c.id];
  }
  function shownArms() { return hasReforms ? [DATA.baseline, state.arm] : [DATA.baseline]; }
  function rgba(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16},${(n >> 8) & 255},${n & 255},${alpha})`;
  }
  function visibleTraces(c) {
    const arms = shownArms();
    const ctl = state.controls[c.id];
    return c.traces.filter(t => (t.arm === null || arms.includes(t.arm))
                                && (!t.group || t.group === ctl));
  }
  function visibleColumns(c) {
    const cols = [];
    visibleTraces(c).forEach(t => [t.y, t.lo, t.hi].forEach(i => {
      if (i !== null && i !== undefined && !cols.includes(i)) cols.push(i);
    }));
    return cols;
  }

  function plotTraces(c) {
    const out = [];
    const X = xOf(c);
    const names = [...new Set(c.traces.filter(t => t.type !== "points").map(t => t.name))];
    const statuses = new Set();  // one legend entry per status: the colour names the line
    visibleTraces(c).forEach(t => {
      const y = c.columns[t.y].values;
      if (t.type === "points") {
        const i = names.indexOf(t.line);
        const col = i < 0 ? "#111" : PALETTE[i % PALETTE.length];
        out.push({x: X, y: y, type: "scatter", mode: "markers", name: t.name,
                  legendgroup: t.status, showlegend: !statuses.has(t.status),
                  hovertemplate: "%{y:,.0f}<extra>" + esc(t.name) + "</extra>",
                  marker: {symbol: SYMBOLS[t.status], size: 11, color: col,
                           line: {width: 1.5, color: "#111"}}});
        if (!statuses.has(t.status)) out[out.length - 1].name = "published: " + t.status;
        statuses.add(t.status);
        return;
      }
      const colour = PALETTE[names.indexOf(t.name) % PALETTE.length];
      const reform = hasReforms && t.arm !== DATA.baseline;
      const label = hasReforms ? `${t.name} (${armWords(t.arm)})` : t.name;
      const legend = !reform || t.type === "bar";  // lines: solid baseline, dashed reform
      if (t.type === "bar") {
        const bar = {x: X, y: y, type: "bar", name: label, legendgroup: t.arm,
                     marker: {color: reform ? rgba(colour, 0.45) : colour,
                              line: {color: colour, width: 1.5}}};
        if (t.lo !== null) {
          const lo = c.columns[t.lo].values, hi = c.columns[t.hi].values;
          bar.error_y = {type: "data", symmetric: false, color: "#333",
                         array: y.map((v, i) => hi[i] === null ? 0 : hi[i] - v),
                         arrayminus: y.map((v, i) => lo[i] === null ? 0 : v - lo[i])};
        }
        if (c.layout && c.layout.horizontal) {  // long category names: bars across
          [bar.x, bar.y] = [bar.y, bar.x];
          bar.orientation = "h";
          if (bar.error_y) { bar.error_x = bar.error_y; delete bar.error_y; }
        }
        out.push(bar);
        return;
      }
      if (t.lo !== null) {  // the 90% band as one closed shape: high end out, low end back
        const lo = c.columns[t.lo].values, hi = c.columns[t.hi].values;
        const keep = X.map((_, i) => i).filter(i => lo[i] !== null && hi[i] !== null);
        out.push({x: keep.map(i => X[i]).concat(keep.map(i => X[i]).reverse()),
                  y: keep.map(i => hi[i]).concat(keep.map(i => lo[i]).reverse()),
                  type: "scatter", mode: "lines", line: {width: 0}, fill: "toself",
                  fillcolor: rgba(colour, 0.22), hoverinfo: "skip", showlegend: false,
                  legendgroup: label, name: label + ": 90% interval"});
      }
      out.push({x: X, y: y, type: "scatter", mode: "lines", legendgroup: label,
                name: reform ? label : t.name,  // the key above says solid is the baseline
                showlegend: legend, hovertemplate: "%{y:,.4~s}<extra>" + esc(label) + "</extra>",
                line: {color: colour, width: 2,
                       dash: t.difference ? "solid" : reform ? "dash" : (t.dash || "solid")}});
    });
    return out;
  }

  function layoutFor(c) {
    const xDate = c.x_label === "month";
    if (c.layout && c.layout.horizontal) {
      return {margin: {l: 20, r: 20, t: 10, b: 50}, hovermode: "closest", barmode: "group",
              font: {family: "DejaVu Sans, Arial, sans-serif", size: 13},
              xaxis: {title: {text: c.y_label}, rangemode: "tozero", automargin: true},
              yaxis: {type: "category", autorange: "reversed", automargin: true},
              legend: {orientation: "h", x: 0, y: -0.15, yanchor: "top", font: {size: 12}}};
    }
    return Object.assign({
      margin: {l: 70, r: 20, t: 10, b: 50}, hovermode: "closest", barmode: "group",
      font: {family: "DejaVu Sans, Arial, sans-serif", size: 13},
      xaxis: {title: {text: xDate || c.x_label === "year" ? "" : c.x_label},
              type: xDate ? "date" : "category", automargin: true},
      yaxis: Object.assign({title: {text: c.y_label}, rangemode: "tozero", automargin: true},
                           (c.layout && c.layout.yaxis) || {}),
      legend: {orientation: "h", x: 0, y: -0.1, yanchor: "top", font: {size: 12}},
    }, {});
  }
  // room for the legend below the plot, so a long legend never squeezes the data
  function heightFor(traces) {
    const items = traces.filter(t => t.showlegend !== false).length;
    return 380 + 24 * Math.ceil(items / 2);
  }
  // No mode bar (it costs about as much to build as a chart) and no per-chart resize
  // observers: zoom by dragging, double-click to reset; one debounced resize for all charts;
  // a PNG button under each chart instead of the mode bar's camera.
  const CONFIG = {displayModeBar: false, responsive: false};
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => document.querySelectorAll(".plot.js-plotly-plot")
      .forEach(el => Plotly.Plots.resize(el)), 150);
  });

  function tableOf(c) {
    const cols = visibleColumns(c);
    const header = [c.x_label].concat(cols.map(i => c.columns[i].label));
    const rows = c.x.map((x, r) => [x].concat(cols.map(i => c.columns[i].values[r])));
    return {header: header, rows: rows, units: [null].concat(cols.map(() => c.unit))};
  }
  function csvText(t) {
    const q = v => {
      if (v === null || v === undefined) return "";
      const s = String(v);
      return /[",\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    return [t.header].concat(t.rows).map(r => r.map(q).join(",")).join("\n") + "\n";
  }
  function download(name, text) {
    const url = URL.createObjectURL(new Blob([text], {type: "text/csv;charset=utf-8"}));
    const a = document.createElement("a");
    a.href = url; a.download = name; document.body.appendChild(a); a.click();
    setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
  }
  function fillTable(el, t) {
    const head = "<thead><tr>" + t.header.map(h => `<th>${esc(h)}</th>`).join("") + "</tr></thead>";
    const body = t.rows.map(r => "<tr>" + r.map((v, i) => {
      const raw = v === null || v === undefined ? "" : String(v);
      const shown = i === 0 || typeof v !== "number" ? esc(raw) : fmt(v, t.units[i]);
      return `<td data-value="${esc(raw)}">${shown}</td>`;
    }).join("") + "</tr>").join("");
    el.innerHTML = head + "<tbody>" + body + "</tbody>";
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, ch => ({"&": "&amp;", "<": "&lt;", ">": "&gt;",
                                               '"': "&quot;"}[ch]));
  }

  function chartBlock(c) {
    const div = document.createElement("div");
    div.className = "chart-block"; div.id = "block-" + c.id;
    div.innerHTML = `<h3>${esc(c.title)}</h3><p class="note">${esc(c.note)}</p>`;
    if (c.control) {
      const opts = c.control.options.map(o => `<option value="${esc(o.value)}">${esc(o.label)}</option>`);
      div.innerHTML += `<div class="controls"><label>${esc(c.control.label)}: <select class="chart-control" data-chart="${c.id}">${opts.join("")}</select></label></div>`;
    }
    div.innerHTML += `<div class="plot" id="plot-${c.id}"></div>
      <button type="button" class="csv" data-chart="${c.id}">Download the data (CSV)</button>
      <button type="button" class="png" data-plot="plot-${c.id}">Download the chart (PNG)</button>
      <details class="numbers-details" data-chart="${c.id}"><summary>Show the numbers</summary>
      <div class="data-table"><table class="numbers" id="table-${c.id}"></table></div></details>`;
    return div;
  }
  function refreshTable(c) {
    const det = document.querySelector(`details[data-chart="${c.id}"]`);
    if (det && det.open) fillTable(document.getElementById("table-" + c.id), tableOf(c));
  }
  function draw(c) {
    refreshTable(c);
    const traces = plotTraces(c), layout = layoutFor(c);
    layout.height = heightFor(traces);
    const el = document.getElementById("plot-" + c.id);
    el.style.height = layout.height + "px";
    return Plotly.react(el, traces, layout, CONFIG);
  }

  // ---------------------------------------------------------------- comparison: summary
  const S = DATA.summary;
  function row(key, arm, kind) {
    return S.find(r => r.key === key && r.arm === arm && r.kind === kind) || null;
  }
  const keys = [...new Map(S.map(r => [r.key, r])).values()];
  function interval(r, unit) {
    return r ? `${fmt(r.lo, unit)} to ${fmt(r.hi, unit)}` : "-";
  }
  function cell(r, field, unit) {
    const v = r ? r[field] : null;
    return `<td data-key="${r ? esc(r.key) : ""}" data-arm="${r ? esc(r.arm) : ""}" data-kind="${r ? r.kind : ""}" data-field="${field}" data-value="${v === null ? "" : v}">${fmt(v, unit)}</td>`;
  }
  function explorerTable() {
    const a = state.arm, b = DATA.baseline;
    const header = ["result", "unit", "baseline", "baseline: 90% interval", "with the reforms",
                    "with the reforms: 90% interval", "difference", "difference: 90% interval",
                    "seeds", "depends on"];
    const rows = keys.map(k => {
      const lb = row(k.key, b, "level"), la = row(k.key, a, "level"), d = row(k.key, a, "difference");
      return {k: k, lb: lb, la: la, d: d};
    });
    const el = document.getElementById("explorer_table");
    el.innerHTML = "<thead><tr>" + header.map(h => `<th>${h}</th>`).join("") + "</tr></thead><tbody>" +
      rows.map(x => `<tr data-key="${esc(x.k.key)}"><td>${esc(x.k.label)}</td><td>${esc(x.k.unit)}</td>` +
        cell(x.lb, "mean", x.k.unit) + `<td>${interval(x.lb, x.k.unit)}</td>` +
        cell(x.la, "mean", x.k.unit) + `<td>${interval(x.la, x.k.unit)}</td>` +
        cell(x.d, "mean", x.k.unit) + `<td>${interval(x.d, x.k.unit)}</td>` +
        `<td>${x.d ? x.d.n_seeds : "-"}</td><td>${esc(x.k.depends_on || "")}</td></tr>`).join("") + "</tbody>";
    const csvRows = [];
    rows.forEach(x => [["baseline", x.lb], ["with the reforms", x.la], ["difference", x.d]].forEach(([what, r]) => {
      if (r) csvRows.push([x.k.label, x.k.unit, r.arm, what, r.mean, r.lo, r.hi, r.n_seeds]);
    }));
    tables.explorer_table = {header: ["result", "unit", "arm", "what", "mean", "low end of 90% interval",
                                      "high end of 90% interval", "seeds"], rows: csvRows};
  }
  function explorerChart() {
    const k = keys.find(x => x.key === state.output);
    const arms = [DATA.baseline, state.arm];
    const rs = arms.map(a => row(k.key, a, "level"));
    document.getElementById("explorer-title").textContent =
      `${k.label}: baseline and with the chosen reforms (90% interval)`;
    const tr = {x: arms.map(armWords), y: rs.map(r => r ? r.mean : null), type: "bar",
                marker: {color: [PALETTE[7], PALETTE[1]]}, name: k.label,
                error_y: {type: "data", symmetric: false, color: "#333",
                          array: rs.map(r => r ? r.hi - r.mean : 0),
                          arrayminus: rs.map(r => r ? r.mean - r.lo : 0)}};
    return Plotly.react("plot-explorer", [tr], {margin: {l: 80, r: 20, t: 10, b: 60},
      yaxis: {title: {text: k.unit}, rangemode: "tozero"}, font: {size: 13}}, CONFIG);
  }
  function reformChart() {
    const k = keys.find(x => x.key === document.getElementById("reform-output").value);
    const rs = DATA.arms.filter(a => a !== DATA.baseline).map(a => row(k.key, a, "difference"));
    const tr = {y: rs.map(r => armWords(r ? r.arm : "")), x: rs.map(r => r ? r.mean : null),
                type: "scatter", mode: "markers", name: "difference from the baseline",
                marker: {size: 11, color: rs.map(r => r && r.arm === state.arm ? PALETTE[1] : PALETTE[0])},
                error_x: {type: "data", symmetric: false, color: "#333",
                          array: rs.map(r => r ? r.hi - r.mean : 0),
                          arrayminus: rs.map(r => r ? r.mean - r.lo : 0)}};
    return Plotly.react("plot-reform_differences", [tr], {
      margin: {l: 260, r: 20, t: 10, b: 50}, font: {size: 13},
      xaxis: {title: {text: `${k.label} (${k.unit}), reform minus baseline`}, zeroline: true},
      yaxis: {automargin: true}, height: Math.max(300, 40 * rs.length + 100)}, CONFIG);
  }
  function reformTable() {
    const reforms = DATA.arms.filter(a => a !== DATA.baseline);
    const el = document.getElementById("reform_table");
    el.innerHTML = "<thead><tr><th>result</th><th>baseline</th>" +
      reforms.map(a => `<th>${esc(armWords(a))}: difference (90% interval)</th>`).join("") +
      "</tr></thead><tbody>" + keys.map(k => {
        const b = row(k.key, DATA.baseline, "level");
        return `<tr><td>${esc(k.label)} (${esc(k.unit)})</td>` + cell(b, "mean", k.unit) +
          reforms.map(a => {
            const d = row(k.key, a, "difference");
            return d ? `<td data-key="${esc(k.key)}" data-arm="${esc(a)}" data-kind="difference" data-field="mean" data-value="${d.mean}">${fmt(d.mean, k.unit)} (${interval(d, k.unit)})</td>` : "<td>-</td>";
          }).join("") + "</tr>";
      }).join("") + "</tbody>";
    tables.reform_table = {header: ["result", "unit", "arm", "kind", "mean",
                                    "low end of 90% interval", "high end of 90% interval", "seeds"],
                           rows: S.map(r => [r.label, r.unit, r.arm, r.kind, r.mean, r.lo, r.hi, r.n_seeds])};
  }
  const tables = {};

  function setupLevers() {
    const all = [...new Set(Object.values(DATA.levers).flat())];
    const fs = document.getElementById("levers");
    all.forEach(l => {
      const id = "lever-" + l;
      fs.insertAdjacentHTML("beforeend", `<label><input type="checkbox" id="${esc(id)}" value="${esc(l)}"> ${esc(DATA.lever_words[l] || l)}</label>`);
    });
    fs.addEventListener("change", () => {
      const on = [...fs.querySelectorAll("input:checked")].map(i => i.value).sort();
      const arm = DATA.arms.find(a => a !== DATA.baseline &&
        JSON.stringify([...DATA.levers[a]].sort()) === JSON.stringify(on));
      const msg = document.getElementById("explorer-message");
      if (arm) { msg.textContent = ""; selectArm(arm); }
      else { msg.textContent = on.length ? "That combination of reforms was not run; the table still shows the last one run." : "Switch on at least one reform."; }
    });
  }
  function syncLevers() {
    const fs = document.getElementById("levers");
    if (!fs) return;
    fs.querySelectorAll("input").forEach(i => { i.checked = DATA.levers[state.arm].includes(i.value); });
  }
  function selectArm(arm) {
    state.arm = arm;
    const sel = document.getElementById("arm-select");
    if (sel) sel.value = arm;
    syncLevers();
    return drawAll();
  }

  function drawAll() {
    const jobs = DATA.charts.map(draw);
    if (hasReforms) {
      explorerTable(); jobs.push(explorerChart()); jobs.push(reformChart());
    }
    return Promise.all(jobs);
  }

  function setup() {
    DATA.charts.forEach(c => {
      document.querySelector(`.charts[data-section="${c.section}"]`).appendChild(chartBlock(c));
    });
    document.addEventListener("change", e => {
      const t = e.target;
      if (t.classList.contains("chart-control")) {
        state.controls[t.dataset.chart] = t.value; draw(charts[t.dataset.chart]);
      } else if (t.id === "arm-select") { selectArm(t.value); }
      else if (t.id === "explorer-output") { state.output = t.value; explorerChart(); }
      else if (t.id === "reform-output") { reformChart(); }
    });
    document.addEventListener("toggle", e => {
      const c = charts[e.target.dataset && e.target.dataset.chart];
      if (c) refreshTable(c);
    }, true);
    document.addEventListener("click", e => {
      const t = e.target;
      if (t.classList.contains("png")) {
        Plotly.downloadImage(t.dataset.plot, {format: "png", width: 1200, height: 600, scale: 2,
                                              filename: t.dataset.plot.replace(/^plot-/, "")});
        return;
      }
      if (!t.classList.contains("csv")) return;
      if (t.dataset.chart) download(t.dataset.chart + ".csv", csvText(tableOf(charts[t.dataset.chart])));
      else download(t.dataset.table + ".csv", csvText(tables[t.dataset.table]));
    });
    if (hasReforms) {
      const opts = keys.map(k => `<option value="${esc(k.key)}">${esc(k.label)}</option>`).join("");
      document.querySelectorAll(".output-select").forEach(s => { s.innerHTML = opts; });
      state.output = keys.length ? keys[0].key : null;
      setupLevers(); syncLevers(); reformTable();
      document.getElementById("arm-select").value = state.arm;
    }
  }

  setup();
  const t0 = performance.now();
  timing.setup = t0;
  window.dcsimReport = {
    data: DATA, state: state, tableOf: id => tableOf(charts[id]), csvOf: id => csvText(tableOf(charts[id])),
    tables: tables, selectArm: selectArm, timing: timing,
    ready: drawAll().then(() => {
      window.dcsimReport.drawMs = performance.now() - t0;  // drawing alone
      window.dcsimReport.drawnAt = performance.now();  // from the start of navigation
      document.body.dataset.drawn = "true";
    }),
  };
})();
