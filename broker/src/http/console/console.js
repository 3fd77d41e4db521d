// The Weir console: a hash-routed page over the read-only JSON API (/v1/...). Plain
// JavaScript, no build step; charts with the vendored uPlot. Every page renders from one or
// two API calls; pages that poll (overview, group) stop when the reader navigates away.
"use strict";

const POLL_MS = 2000;
// Points kept per chart: 5 minutes at one poll every 2 s.
const HISTORY = 150;

const main = document.getElementById("main");
const statusEl = document.getElementById("status");
let stopPage = () => {};

// ---- helpers ------------------------------------------------------------------------------

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

async function api(path) {
  const started = performance.now();
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
  statusEl.textContent = `${path.split("?")[0]} · ${Math.round(performance.now() - started)} ms`;
  if (!response.ok) {
    throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
  }
  return body;
}

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

// Thousands separators without Intl (thousands of cells per page).
function num(n) {
  const s = String(n);
  return /^-?\d{4,}$/.test(s) ? s.replace(/\B(?=(\d{3})+$)/g, ",") : s;
}

// Rows per table page: a table of 1,000 partitions is drawn 100 rows at a time.
const PAGE_ROWS = 100;
const pageOf = {};

// Draws table `id` into `el` with the page of `rows` (HTML strings) it is on, and a pager
// when there is more than one page.
function pagedTable(el, id, head, rows, empty) {
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  const page = Math.min(pageOf[id] || 0, pages - 1);
  pageOf[id] = page;
  const shown = rows.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);
  const pager = pages > 1 ? `<div class="pager">Rows ${num(page * PAGE_ROWS + 1)}–${num(page * PAGE_ROWS + shown.length)} of ${num(rows.length)}
    <button class="plain" data-step="-1"${page === 0 ? " disabled" : ""}>← Previous</button>
    <button class="plain" data-step="1"${page === pages - 1 ? " disabled" : ""}>Next →</button></div>` : "";
  el.innerHTML = `${pager}<table id="${id}">${head}<tbody>${shown.join("") || empty}</tbody></table>`;
  for (const button of el.querySelectorAll(".pager button")) {
    button.addEventListener("click", () => {
      pageOf[id] = page + Number(button.dataset.step);
      pagedTable(el, id, head, rows, empty);
    });
  }
}

function duration(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

function isoTime(ms) {
  const d = new Date(Number(ms));
  return isNaN(d.getTime()) ? String(ms) : d.toISOString().replace("T", " ").replace("Z", " UTC");
}

function card(label, value, id) {
  return `<div class="card"><div class="label">${esc(label)}</div><div class="value"${id ? ` id="${id}"` : ""}>${esc(value)}</div></div>`;
}

function fail(err) {
  main.innerHTML = `<p class="error">${esc(err.message || err)}</p>`;
}

// Marks the page drawn: body[data-rendered-ms] is the time since navigation started, which
// the browser test reads to measure load times.
function rendered() {
  if (!document.body.dataset.renderedMs) {
    document.body.dataset.renderedMs = String(Math.round(performance.now()));
  }
}

// Polls `read` every POLL_MS until the page changes; `read` is called at once.
function poll(read) {
  let timer = null;
  let live = true;
  const tick = async () => {
    try { await read(); rendered(); } catch (err) { statusEl.textContent = `error: ${err.message}`; }
    if (live) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => { live = false; clearTimeout(timer); };
}

// A time chart of several series; `push(t, values)` adds one point to each.
function timeChart(el, title, series, unit) {
  const data = [[]].concat(series.map(() => []));
  const colors = ["#1f6feb", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#0b7285", "#5f3dc4", "#e67700", "#364fc7", "#087f5b"];
  const opts = {
    title,
    width: Math.max(300, el.clientWidth - 16),
    height: 220,
    series: [{}].concat(series.map((label, i) => ({
      label, stroke: colors[i % colors.length], width: 1.5,
      value: (u, v) => (v == null ? "–" : unit(v)),
    }))),
    axes: [{}, { values: (u, vals) => vals.map(unit), size: 80 }],
  };
  const plot = typeof uPlot === "function" ? new uPlot(opts, data, el) : null;
  return {
    push(t, values) {
      data[0].push(t);
      values.forEach((v, i) => data[i + 1].push(v));
      if (data[0].length > HISTORY) data.forEach((d) => d.shift());
      if (plot) plot.setData(data);
    },
  };
}

// ---- overview -----------------------------------------------------------------------------

function overview() {
  main.innerHTML = `<h1>Overview</h1><div class="cards" id="cards"></div>
    <div class="chart" id="throughput"></div><div class="chart" id="records-rate"></div>`;
  const bytesChart = timeChart(document.getElementById("throughput"), "Throughput (bytes/s)",
    ["in", "out"], (v) => `${bytes(v)}/s`);
  const recordsChart = timeChart(document.getElementById("records-rate"), "Records/s",
    ["in", "out"], (v) => num(Math.round(v)));
  let last = null;
  return poll(async () => {
    const c = await api("/v1/cluster");
    let rates = { bin: 0, bout: 0, rin: 0, rout: 0 };
    if (last && c.now_ms > last.now_ms) {
      const dt = (c.now_ms - last.now_ms) / 1000;
      rates = {
        bin: Math.max(0, c.bytes_in_total - last.bytes_in_total) / dt,
        bout: Math.max(0, c.bytes_out_total - last.bytes_out_total) / dt,
        rin: Math.max(0, c.records_in_total - last.records_in_total) / dt,
        rout: Math.max(0, c.records_out_total - last.records_out_total) / dt,
      };
      bytesChart.push(c.now_ms / 1000, [rates.bin, rates.bout]);
      recordsChart.push(c.now_ms / 1000, [rates.rin, rates.rout]);
    }
    last = c;
    document.getElementById("cards").innerHTML = [
      card("Cluster id", c.cluster_id),
      card("Broker", `#${c.broker_id} ${c.advertised.host}:${c.advertised.port}`),
      card("Version", c.version),
      card("Uptime", duration(c.uptime_seconds)),
      card("State", c.ready ? "ready" : "not ready"),
      card("Topics / partitions", `${num(c.topics)} / ${num(c.partitions)}`, "overview-topics"),
      card("Consumer groups", num(c.groups)),
      card("Disk use", bytes(c.disk_bytes), "overview-disk"),
      card("In", `${bytes(rates.bin)}/s · ${num(Math.round(rates.rin))} rec/s`),
      card("Out", `${bytes(rates.bout)}/s · ${num(Math.round(rates.rout))} rec/s`),
      card("Records in (total)", num(c.records_in_total)),
      card("Records out (total)", num(c.records_out_total)),
    ].join("");
  });
}

// ---- topics -------------------------------------------------------------------------------

async function topics() {
  const t = await api("/v1/topics");
  const row = (x) => `<tr data-topic="${esc(x.name)}">
    <td><a href="#/topics/${encodeURIComponent(x.name)}">${esc(x.name)}</a></td>
    <td class="num">${x.partitions}</td><td class="num">${num(x.records)}</td>
    <td class="num">${bytes(x.size_bytes)}</td><td class="num">${x.segments}</td>
    <td class="num">${bytes(x.bytes_in_total)}</td><td class="num">${bytes(x.bytes_out_total)}</td></tr>`;
  main.innerHTML = `<h1>Topics <span class="muted">(${t.topics.length}${t.truncated ? "+" : ""})</span></h1>
    <form class="controls" onsubmit="return false"><label>Filter<input id="topic-filter" placeholder="name contains…"></label></form>
    <div id="topics-out"></div>`;
  const head = `<thead><tr><th>Topic</th><th class="num">Partitions</th><th class="num">Records</th>
    <th class="num">Size</th><th class="num">Segments</th><th class="num">Bytes in</th><th class="num">Bytes out</th></tr></thead>`;
  const draw = (q) => pagedTable(document.getElementById("topics-out"), "topics-table", head,
    t.topics.filter((x) => x.name.toLowerCase().includes(q)).map(row),
    `<tr><td colspan="7" class="muted">No topics.</td></tr>`);
  draw("");
  document.getElementById("topic-filter").addEventListener("input", (e) => {
    pageOf["topics-table"] = 0;
    draw(e.target.value.toLowerCase());
  });
}

async function topic(name) {
  const t = await api(`/v1/topics/${encodeURIComponent(name)}`);
  const browse = (p, offset) => `#/records?topic=${encodeURIComponent(name)}&partition=${p}&offset=${offset}`;
  const rows = t.partitions.map((p) => `<tr data-partition="${p.partition}">
    <td class="num">${p.partition}</td><td class="num">${p.leader}</td>
    <td class="num">${num(p.log_start_offset)}</td><td class="num">${num(p.log_end_offset)}</td>
    <td class="num">${num(p.high_watermark)}</td><td class="num">${bytes(p.size_bytes)}</td>
    <td class="num">${p.segments}</td><td class="num">${num(p.records_in_total)}</td>
    <td class="num">${num(p.records_out_total)}</td>
    <td><a href="${browse(p.partition, p.log_start_offset)}">oldest</a> ·
        <a href="${browse(p.partition, Math.max(p.log_start_offset, p.high_watermark - 20))}">newest</a></td></tr>`);
  const configs = Object.entries(t.configs).map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`);
  main.innerHTML = `<h1>Topic ${esc(t.name)} <span class="muted">(${t.partitions.length} partitions)</span></h1>
    <div id="partitions-out"></div>
    <h2>Log settings in force</h2>
    <table id="configs-table" style="max-width:640px"><tbody>${configs.join("")}</tbody></table>`;
  pageOf["partitions-table"] = 0;
  pagedTable(document.getElementById("partitions-out"), "partitions-table", `<thead><tr><th class="num">Partition</th><th class="num">Leader</th>
    <th class="num">Log start</th><th class="num">Log end</th><th class="num">High watermark</th>
    <th class="num">Size</th><th class="num">Segments</th><th class="num">Records in</th><th class="num">Records out</th><th>Browse</th></tr></thead>`,
    rows, `<tr><td colspan="10" class="muted">No partitions.</td></tr>`);
}

// ---- records ------------------------------------------------------------------------------

function hexOf(base64) {
  const raw = atob(base64);
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    out += raw.charCodeAt(i).toString(16).padStart(2, "0") + (i % 16 === 15 ? "\n" : " ");
  }
  return out.trim();
}

function showData(d, binaryAs) {
  if (d == null) return `<span class="muted">null</span>`;
  let text = d.text;
  let tag = d.encoding;
  if (d.encoding === "base64" && binaryAs === "hex") { text = hexOf(d.text); tag = "hex"; }
  const cut = d.truncated ? ` <span class="tag">first bytes of ${num(d.size)}</span>` : "";
  return `<span class="tag">${tag}</span>${cut}<pre>${esc(text)}</pre>`;
}

async function records(params) {
  const list = await api("/v1/topics");
  const topicName = params.get("topic") || (list.topics[0] && list.topics[0].name) || "";
  const partition = params.get("partition") || "0";
  const mode = params.has("timestamp") ? "timestamp" : "offset";
  const binaryAs = params.get("binary") || "hex";
  const limit = params.get("limit") || "50";
  const tsValue = params.has("timestamp") ? new Date(Number(params.get("timestamp"))).toISOString().slice(0, 19) : "";
  const options = list.topics.map((t) => `<option${t.name === topicName ? " selected" : ""}>${esc(t.name)}</option>`);
  main.innerHTML = `<h1>Record browser</h1>
    <form class="controls" id="records-form">
      <label>Topic<select name="topic">${options.join("")}</select></label>
      <label>Partition<input name="partition" type="number" min="0" value="${esc(partition)}" style="width:90px"></label>
      <label>From<select name="mode"><option value="offset"${mode === "offset" ? " selected" : ""}>offset</option>
        <option value="timestamp"${mode === "timestamp" ? " selected" : ""}>time (UTC)</option></select></label>
      <label>Offset<input name="offset" type="number" value="${esc(params.get("offset") || "")}" placeholder="log start" style="width:120px"></label>
      <label>Time (UTC)<input name="timestamp" type="datetime-local" step="1" value="${esc(tsValue)}"></label>
      <label>Limit<input name="limit" type="number" min="1" max="500" value="${esc(limit)}" style="width:80px"></label>
      <label>Binary as<select name="binary"><option${binaryAs === "hex" ? " selected" : ""}>hex</option><option${binaryAs === "base64" ? " selected" : ""}>base64</option></select></label>
      <button type="submit">Read</button>
    </form><div id="records-out"></div>`;
  document.getElementById("records-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const q = new URLSearchParams({ topic: f.get("topic"), partition: f.get("partition"), limit: f.get("limit"), binary: f.get("binary") });
    if (f.get("mode") === "timestamp" && f.get("timestamp")) q.set("timestamp", String(Date.parse(f.get("timestamp") + "Z")));
    else if (f.get("offset") !== "") q.set("offset", f.get("offset"));
    location.hash = `#/records?${q}`;
  });
  if (!topicName) { document.getElementById("records-out").innerHTML = `<p class="muted">No topics yet.</p>`; return; }
  const q = new URLSearchParams({ limit });
  if (params.has("offset")) q.set("offset", params.get("offset"));
  if (params.has("timestamp")) q.set("timestamp", params.get("timestamp"));
  const out = document.getElementById("records-out");
  let page;
  try {
    page = await api(`/v1/topics/${encodeURIComponent(topicName)}/partitions/${encodeURIComponent(partition)}/records?${q}`);
  } catch (err) { out.innerHTML = `<p class="error">${esc(err.message)}</p>`; return; }
  const rows = page.records.map((r) => `<tr data-offset="${r.offset}">
    <td class="num">${r.offset}</td><td>${esc(isoTime(r.timestamp))}<div class="hint">${r.timestamp} · ${r.timestamp_type}</div></td>
    <td class="key">${showData(r.key, binaryAs)}</td><td class="value">${showData(r.value, binaryAs)}</td>
    <td class="headers">${r.headers.map((h) => `<div><b>${esc(h.key)}</b>: ${h.value == null ? `<span class="muted">null</span>` : esc(h.value.encoding === "base64" && binaryAs === "hex" ? hexOf(h.value.text) : h.value.text)}</div>`).join("")}</td></tr>`);
  const next = new URLSearchParams({ topic: topicName, partition, limit, binary: binaryAs, offset: page.next_offset });
  const compressed = page.compressed_batches.map((b) => `<li>offsets ${b.base_offset}–${b.last_offset}: ${b.records} records compressed with <b>${esc(b.codec)}</b> (${esc(b.reason)})</li>`);
  out.innerHTML = `<div class="row"><span>Partition ${page.partition} of <b>${esc(page.topic)}</b>:
      log start ${num(page.log_start_offset)}, high watermark ${num(page.high_watermark)};
      showing from ${num(page.start_offset)}${page.truncated ? " (cut to the byte limit)" : ""}.</span>
      ${page.next_offset < page.high_watermark ? `<a href="#/records?${next}" id="next-page">Next page →</a>` : `<span class="muted">end of log</span>`}</div>
    ${compressed.length ? `<p>Compressed batches this broker cannot open:</p><ul id="compressed">${compressed.join("")}</ul>` : ""}
    <table id="records-table"><thead><tr><th class="num">Offset</th><th>Timestamp</th><th>Key</th><th>Value</th><th>Headers</th></tr></thead>
    <tbody>${rows.join("") || `<tr><td colspan="5" class="muted">No records here.</td></tr>`}</tbody></table>`;
}

// ---- consumer groups ----------------------------------------------------------------------

async function groups() {
  const g = await api("/v1/groups");
  const rows = g.groups.map((x) => `<tr data-group="${esc(x.group)}">
    <td><a href="#/groups/${encodeURIComponent(x.group)}">${esc(x.group)}</a></td>
    <td><span class="tag state-${esc(x.state)}">${esc(x.state)}</span></td>
    <td>${esc(x.protocol_type)}</td><td class="num">${x.members}</td></tr>`);
  main.innerHTML = `<h1>Consumer groups <span class="muted">(${g.groups.length}${g.truncated ? "+" : ""})</span></h1>
    <div id="groups-out"></div>`;
  pagedTable(document.getElementById("groups-out"), "groups-table",
    `<thead><tr><th>Group</th><th>State</th><th>Protocol type</th><th class="num">Members</th></tr></thead>`,
    rows, `<tr><td colspan="4" class="muted">No consumer groups yet.</td></tr>`);
}

function group(name) {
  main.innerHTML = `<h1>Consumer group ${esc(name)}</h1><div class="cards" id="group-cards"></div>
    <div class="chart" id="lag-chart"></div><h2>Lag per partition</h2><div id="group-offsets"></div>
    <h2>Members</h2><div id="group-members"></div>`;
  let chart = null;
  let keys = [];
  pageOf["offsets-table"] = 0;
  const history = []; // [seconds, total lag]
  return poll(async () => {
    const g = await api(`/v1/groups/${encodeURIComponent(name)}`);
    const t = g.now_ms / 1000;
    history.push([t, g.total_lag]);
    if (history.length > HISTORY) history.shift();
    // Closing rate: the least-squares slope of the total lag over the last minute.
    const recent = history.filter(([s]) => s >= t - 60);
    let rate = null;
    if (recent.length >= 2) {
      const n = recent.length;
      const mx = recent.reduce((a, [x]) => a + x, 0) / n, my = recent.reduce((a, [, y]) => a + y, 0) / n;
      const sxx = recent.reduce((a, [x]) => a + (x - mx) ** 2, 0);
      rate = sxx > 0 ? -recent.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0) / sxx : 0;
    }
    const eta = rate > 0 ? duration(g.total_lag / rate) : rate === null ? "measuring…" : "not closing";
    document.getElementById("group-cards").innerHTML = [
      `<div class="card"><div class="label">State</div><div class="value"><span class="tag state-${esc(g.state)}">${esc(g.state)}</span></div></div>`,
      card("Protocol", g.protocol || "–"),
      card("Members", g.members.length),
      card("Total lag (records)", num(g.total_lag), "group-total-lag"),
      card("Lag closing at", rate === null ? "measuring…" : `${num(Math.round(rate * 10) / 10)} rec/s`, "group-lag-rate"),
      card("Caught up in", eta),
    ].join("");
    // Most lag first: the partitions to look at are on the first page.
    const offsets = g.offsets.slice().sort((a, b) => (b.lag || 0) - (a.lag || 0));
    pagedTable(document.getElementById("group-offsets"), "offsets-table", `<thead><tr><th>Topic</th>
      <th class="num">Partition</th><th class="num">Committed</th><th class="num">High watermark</th><th class="num">Lag</th><th>Committed at</th></tr></thead>`,
      offsets.map((o) => `<tr><td>${esc(o.topic)}</td><td class="num">${o.partition}</td>
        <td class="num">${num(o.committed_offset)}</td><td class="num">${o.high_watermark == null ? "–" : num(o.high_watermark)}</td>
        <td class="num lag" data-topic="${esc(o.topic)}" data-partition="${o.partition}">${o.lag == null ? "–" : o.lag}</td>
        <td>${esc(isoTime(o.commit_timestamp_ms))}</td></tr>`),
      `<tr><td colspan="6" class="muted">No committed offsets.</td></tr>`);
    document.getElementById("group-members").innerHTML = `<table id="members-table"><thead><tr><th>Member</th><th>Client id</th>
      <th>Host</th><th>Assignment</th></tr></thead><tbody>${g.members.map((m) => `<tr><td>${esc(m.member_id)}${m.group_instance_id ? `<div class="hint">instance ${esc(m.group_instance_id)}</div>` : ""}</td>
        <td>${esc(m.client_id)}</td><td>${esc(m.client_host)}</td>
        <td>${m.assignment == null ? `<span class="muted">–</span>` : m.assignment.map((a) => `${esc(a.topic)} [${a.partitions.join(", ")}]`).join("<br>")}</td></tr>`).join("") || `<tr><td colspan="4" class="muted">No members.</td></tr>`}</tbody></table>`;
    // The chart: total lag and up to eight partitions with the most lag, fixed at first poll.
    if (!chart) {
      keys = g.offsets.filter((o) => o.lag != null).sort((a, b) => b.lag - a.lag).slice(0, 8)
        .map((o) => `${o.topic}/${o.partition}`);
      chart = timeChart(document.getElementById("lag-chart"), "Lag over time (records)",
        ["total"].concat(keys), (v) => num(Math.round(v)));
    }
    const byKey = new Map(g.offsets.map((o) => [`${o.topic}/${o.partition}`, o.lag]));
    chart.push(t, [g.total_lag].concat(keys.map((k) => (byKey.has(k) ? byKey.get(k) : null))));
  });
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  stopPage();
  stopPage = () => {};
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("header nav a")) {
    a.classList.toggle("active", a.dataset.page === page);
  }
  delete document.body.dataset.renderedMs;
  try {
    if (page === "overview") stopPage = overview();
    else if (page === "topics" && parts[1] !== undefined) await topic(parts[1]);
    else if (page === "topics") await topics();
    else if (page === "records") await records(new URLSearchParams(query || ""));
    else if (page === "groups" && parts[1] !== undefined) stopPage = group(parts[1]);
    else if (page === "groups") await groups();
    else main.innerHTML = `<p class="error">No page ${esc(path)}.</p>`;
    if (page !== "overview" && !(page === "groups" && parts[1] !== undefined)) rendered();
  } catch (err) {
    fail(err);
  }
}

window.addEventListener("hashchange", route);
route();
