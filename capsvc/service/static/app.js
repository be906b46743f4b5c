// The capsvc operator page. Plain JavaScript, no library, no build step.
//
// It asks for the API token once, keeps it in sessionStorage (this tab only) and sends it as a
// bearer header with every call. It polls GET /v1/sessions every second and keeps each
// session's rates for the last minutes in the page; the charts of the selected session draw
// its I/O series from the service (GET /v1/sessions/NAME/series) where the session keeps one,
// its drops from the page's own samples. A session's description says what it has: a flight
// recorder (its Dump button), conversations (its top talkers), a series. Everything the
// service returns is put in the page as text (textContent), never as markup.

import { chart, sparkline, WINDOW_S } from "./chart.js";
import { formatPacket, PcapReader } from "./pcap.js";
import { el, si, when } from "./util.js";

const TOKEN_KEY = "capsvc.token";
const POLL_MS = 1000;
const STREAM_LINES = 200;

const $ = (id) => document.getElementById(id);

// -- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function request(method, path, { body, signal, raw } = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the service does not answer");
  }
  if (resp.status === 401) {
    signOut("The token was refused: sign in again.");
    throw new ApiError(401, "missing or wrong token");
  }
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try {
      const data = await resp.json();
      if (data && data.error) message = data.error;
    } catch (_) {
      // not JSON: keep the status line
    }
    throw new ApiError(resp.status, message);
  }
  if (raw) return resp;
  const type = resp.headers.get("Content-Type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

const api = {
  get: (path, opts) => request("GET", path, opts),
  post: (path, body) => request("POST", path, { body }),
  del: (path) => request("DELETE", path),
};

const enc = encodeURIComponent;
const sessionPath = (name, rest = "") => `/v1/sessions/${enc(name)}${rest}`;
const filePath = (name) => "/v1/files/" + name.split("/").map(enc).join("/");

// -- messages --------------------------------------------------------------------------------

let toastTimer = 0;
function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
}

function setStatus(text, bad = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

// -- state -----------------------------------------------------------------------------------

const state = {
  sessions: new Map(), // name -> {info, samples: [{t, packets, bytes, drops}], rates}
  selected: "",
  pollTimer: 0,
  extraTimer: 0,
  stream: null, // {controller, name}
  series: null, // {name, points} from the service
  lastDump: "", // the file the last dump wrote (its row is marked)
  filesShown: "", // the listing the files table shows (rebuilt only when it changes)
};

// -- signing in ------------------------------------------------------------------------------

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  stopPolling();
  closeStream();
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  setStatus("");
  $("token").focus();
}

async function signIn(candidate) {
  sessionStorage.setItem(TOKEN_KEY, candidate);
  try {
    await api.get("/v1/sessions");
  } catch (err) {
    if (err.status !== 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      $("login-error").textContent = `Cannot sign in: ${err.message}`;
    }
    return;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  startPolling();
  refreshFiles();
  syncSpec();
}

// -- sessions and their rates ----------------------------------------------------------------

function startPolling() {
  stopPolling();
  poll();
  state.pollTimer = setInterval(poll, POLL_MS);
  state.extraTimer = setInterval(pollSelected, 2 * POLL_MS);
}

function stopPolling() {
  clearInterval(state.pollTimer);
  clearInterval(state.extraTimer);
}

async function poll() {
  let body;
  try {
    body = await api.get("/v1/sessions");
  } catch (err) {
    if (err.status !== 401) setStatus(`${err.message}`, true);
    return;
  }
  const now = Date.now() / 1000;
  const seen = new Set();
  for (const info of body.sessions) {
    seen.add(info.name);
    let entry = state.sessions.get(info.name);
    if (!entry || entry.info.started !== info.started) {
      entry = { info, samples: [], rates: [] };
      state.sessions.set(info.name, entry);
    }
    entry.info = info;
    addSample(entry, now, info.stats);
  }
  for (const name of [...state.sessions.keys()]) {
    if (!seen.has(name)) state.sessions.delete(name);
  }
  setStatus(`updated ${new Date().toLocaleTimeString()}`);
  renderSessions();
  renderDetail();
}

function dropsOf(stats) {
  return (stats.dropped || 0) + (stats.kernel_dropped || 0);
}

function addSample(entry, t, stats) {
  const sample = { t, packets: stats.packets, bytes: stats.bytes, drops: dropsOf(stats) };
  const prev = entry.samples[entry.samples.length - 1];
  entry.samples.push(sample);
  if (prev && t > prev.t) {
    const dt = t - prev.t;
    entry.rates.push({
      t,
      pps: Math.max(0, (sample.packets - prev.packets) / dt),
      bps: Math.max(0, (sample.bytes - prev.bytes) / dt),
      dps: Math.max(0, (sample.drops - prev.drops) / dt),
    });
  }
  const oldest = t - WINDOW_S - 5;
  while (entry.samples.length > 2 && entry.samples[0].t < oldest) entry.samples.shift();
  while (entry.rates.length && entry.rates[0].t < oldest) entry.rates.shift();
}

function lastRate(entry) {
  if (entry.info.state !== "running") return null;
  return entry.rates[entry.rates.length - 1] || null;
}

// Rows are made once per session and updated in place, so a button is never replaced under
// the pointer; only the actions are rebuilt, when the session's state changes.
function sessionRow(name) {
  const cells = {};
  for (const key of ["name", "state", "source", "filter", "pps", "bps", "drops", "trend", "actions"]) {
    cells[key] = el("td", { class: key });
  }
  cells.name.append(el("a", { href: "#", onclick: (e) => { e.preventDefault(); select(name); } }, name));
  cells.state.append(el("span", { class: "badge" }));
  cells.filter.classList.add("mono");
  for (const key of ["pps", "bps", "drops"]) cells[key].classList.add("num");
  cells.drops.title = "queue + kernel drops (rate)";
  cells.trend.append(el("canvas", { class: "spark", width: 120, height: 28 }));
  const row = el("tr", { dataset: { session: name } }, ...Object.values(cells));
  return { row, cells, actionsFor: "" };
}

function sessionActions(name, running, recorder) {
  return [
    el("button", { type: "button", class: "details", onclick: () => select(name) }, "Details"),
    running ? el("button", { type: "button", class: "stop", onclick: () => stopSession(name) }, "Stop") :
      el("button", { type: "button", class: "remove", onclick: () => forgetSession(name) }, "Remove"),
    running && recorder ? el("button", {
      type: "button", class: "dump", title: "write what its flight recorder holds to a file",
      onclick: () => dump(name),
    }, "Dump") : null,
    el("button", { type: "button", class: "files", onclick: () => showFiles(name) }, "Files"),
    running ? el("button", {
      type: "button", class: "stream", onclick: () => { select(name); $("stream-filter").focus(); },
    }, "Stream") : null,
  ];
}

function renderSessions() {
  const body = $("sessions").tBodies[0];
  const names = [...state.sessions.keys()];
  for (const name of names) {
    const entry = state.sessions.get(name);
    entry.view = entry.view || sessionRow(name);
    const { row, cells } = entry.view;
    const info = entry.info;
    const rate = lastRate(entry);
    const running = info.state === "running";
    const src = info.source || {};
    row.classList.toggle("selected", name === state.selected);
    cells.state.firstChild.textContent = info.state;
    cells.state.firstChild.className = `badge ${info.state}`;
    cells.source.textContent = `${src.type || ""} ${src.interface || src.path || ""}`.trim();
    cells.filter.textContent = info.filter || "—";
    cells.pps.textContent = rate ? si(rate.pps) : "—";
    cells.bps.textContent = rate ? si(rate.bps, "B") : "—";
    cells.drops.textContent =
      `${si(dropsOf(info.stats))}${rate && rate.dps ? ` (${si(rate.dps)}/s)` : ""}`;
    const recorder = Boolean(info.recorder);
    const wanted = `${running} ${recorder}`;
    if (entry.view.actionsFor !== wanted) {
      cells.actions.replaceChildren(...sessionActions(name, running, recorder).filter(Boolean));
      entry.view.actionsFor = wanted;
    }
    if (row.parentNode !== body || body.children[names.indexOf(name)] !== row) body.append(row);
    sparkline(cells.trend.firstChild, entry.rates);
  }
  for (const row of [...body.children]) {
    if (!state.sessions.has(row.dataset.session)) row.remove();
  }
  $("no-sessions").hidden = names.length > 0;
  const box = $("files-session");
  const known = [...box.options].map((o) => o.value).slice(1).join("\n");
  if (known !== names.join("\n")) {
    const chosen = box.value;
    box.replaceChildren(el("option", { value: "" }, "all"),
      ...names.map((n) => el("option", { value: n }, n)));
    if (chosen && !names.includes(chosen)) box.append(el("option", { value: chosen }, chosen));
    box.value = chosen;
  }
  if (state.selected && !state.sessions.has(state.selected)) {
    state.selected = "";
    closeStream();
  }
}

function select(name) {
  if (state.selected !== name) {
    closeStream();
    state.series = null;
    $("talkers-note").textContent = "";
    $("talkers").tHead.replaceChildren();
    $("talkers").tBodies[0].replaceChildren();
  }
  state.selected = name;
  renderSessions();
  renderDetail();
  pollSelected();
  $("detail").scrollIntoView({ block: "nearest" });
}

async function stopSession(name) {
  try {
    const body = await api.del(sessionPath(name));
    toast(`Stopped ${name}: ${si(body.stats.packets)} packets, ${si(body.stats.bytes, "B")}`);
  } catch (err) {
    toast(`Stopping ${name} failed: ${err.message}`, true);
  }
  await poll();
  refreshFiles();
}

async function forgetSession(name) {
  try {
    await api.del(sessionPath(name));
  } catch (err) {
    toast(`Removing ${name} failed: ${err.message}`, true);
  }
  await poll();
}

async function dump(name) {
  try {
    const body = await api.post(sessionPath(name, "/dump"), {});
    toast(`Dump of ${name} written to ${body.name} (${body.packets} packets, ${si(body.bytes, "B")})`);
    state.lastDump = body.name;
  } catch (err) {
    toast(`Dump of ${name} failed: ${err.message}`, true);
  }
  refreshFiles(true);
}

// -- the selected session: charts, I/O series, top talkers --------------------------------------

async function pollSelected() {
  const name = state.selected;
  const entry = state.sessions.get(name);
  if (!entry) return;
  if (entry.info.series) {
    try {
      const body = await api.get(sessionPath(name, `/series?last=${WINDOW_S}`));
      if (state.selected === name) state.series = { name, points: seriesPoints(body) };
    } catch (err) {
      if (err.status !== 401) state.series = null;
    }
  } else {
    state.series = null;
  }
  if (entry.info.conversations) {
    const by = $("talkers-by").value;
    try {
      const body = await api.get(sessionPath(name, `/conversations?top=10&by=${enc(by)}`));
      if (state.selected === name) renderTalkers(body);
    } catch (err) {
      $("talkers-error").textContent = err.status === 401 ? "" : err.message;
    }
  }
  renderDetail();
}

// The series as chart points: {start, interval, packets: [...], bytes: [...]}, one point per
// second that has ended (the current one is still counting).
function seriesPoints(body) {
  const step = Number(body.interval) || 1;
  if (body.start === null || body.start === undefined) return [];
  const now = Date.now() / 1000;
  const points = [];
  body.packets.forEach((p, i) => {
    const t = body.start + i * step;
    if (t + step <= now) points.push({ t: t + step, pps: p / step, bps: (body.bytes[i] || 0) / step });
  });
  return points;
}

function renderDetail() {
  const name = state.selected;
  const entry = state.sessions.get(name);
  $("detail").hidden = !entry;
  if (!entry) return;
  $("detail-name").textContent = name;
  $("detail-state").textContent = entry.info.state;
  $("detail-state").className = `badge ${entry.info.state}`;
  const fromService = Boolean(state.series && state.series.name === name);
  const points = fromService ? state.series.points : entry.rates;
  $("series-source").textContent = fromService ?
    "Rates from the service's I/O series (drops sampled by this page)." :
    "Rates sampled by this page every second (kept while the page is open).";
  chart($("chart-packets"), [["pps", "packets", points], ["dps", "drops", entry.rates]]);
  chart($("chart-bytes"), [["bps", "bytes", points]]);
  $("talkers-panel").hidden = !entry.info.conversations;
  $("stream-form").hidden = entry.info.state !== "running" && !state.stream;
  renderRecorder(entry.info.recorder);
}

function renderRecorder(recorder) {
  $("recorder-panel").hidden = !recorder;
  if (!recorder) return;
  const held = `${si(recorder.packets)} packets, ${si(recorder.bytes, "B")} held` +
    ` (at most ${si(recorder.max_bytes, "B")} or ${recorder.seconds} s)`;
  const plural = (n, word) => `${si(n)} ${word}${n === 1 ? "" : "s"}`;
  $("recorder-status").textContent = `${held}; ${si(recorder.evicted)} evicted; ` +
    `${plural(recorder.triggers, "trigger")}, ${plural(recorder.dumps, "dump")} ` +
    `written; ${recorder.state}${recorder.dump_errors ? `; ${plural(recorder.dump_errors, "failed dump")}` : ""}.`;
  const shown = recorder.latest_dumps.map((d) => d.name).join("\n");
  if ($("recorder-dumps").dataset.shown === shown) return;
  $("recorder-dumps").dataset.shown = shown;
  $("recorder-dumps").replaceChildren(...[...recorder.latest_dumps].reverse().map((d) => el("li", {},
    el("span", { class: "mono" }, d.name), ` ${d.packets} packets, ${when(d.first_packet)} – ${when(d.last_packet)}`,
    d.trigger ? el("span", { class: "badge" }, "trigger") : null, " ",
    el("button", { type: "button", class: "download", onclick: () => download(d.name) }, "Download"))));
}

// Top talkers: one of the service's tables (address pairs, TCP or UDP 5-tuples, endpoints).
const TALKER_COLUMNS = {
  ip: [["A", (r) => r.a], ["B", (r) => r.b]],
  tcp: [["A", (r) => `${r.a}:${r.a_port}`], ["B", (r) => `${r.b}:${r.b_port}`]],
  udp: [["A", (r) => `${r.a}:${r.a_port}`], ["B", (r) => `${r.b}:${r.b_port}`]],
  endpoints: [["Address", (r) => r.address]],
};
const TALKER_COUNTS = {
  pair: [["Packets A→B", "packets_ab"], ["Packets B→A", "packets_ba"], ["Bytes", "bytes"]],
  endpoints: [["Tx packets", "tx_packets"], ["Rx packets", "rx_packets"], ["Bytes", "bytes"]],
};

function renderTalkers(body) {
  $("talkers-error").textContent = "";
  const kind = $("talkers-kind").value;
  const table = body[kind] || { rows: [] };
  const names = TALKER_COLUMNS[kind] || TALKER_COLUMNS.ip;
  const counts = kind === "endpoints" ? TALKER_COUNTS.endpoints : TALKER_COUNTS.pair;
  const head = [...names.map(([n]) => n), ...counts.map(([n]) => n), "Packets", "± error"];
  const view = $("talkers");
  view.tHead.replaceChildren(el("tr", {}, ...head.map((c, i) =>
    el("th", { class: i >= names.length ? "num" : "" }, c))));
  view.tBodies[0].replaceChildren(...table.rows.map((row) => el("tr", {},
    ...names.map(([, get]) => el("td", { class: "mono" }, get(row))),
    ...counts.map(([, key]) => el("td", { class: "num", title: String(row[key]) }, si(row[key]))),
    el("td", { class: "num" }, si(row.packets)),
    el("td", { class: "num", title: "how much more the ranked measure may truly be" },
      row.error ? si(row.error) : "exact"))));
  const note = table.evictions ?
    `Top ${body.top} by ${body.by} of ${si(table.held)} held (capacity ${si(table.capacity)}); ` +
      `figures may be short of the truth by at most ${si(table.max_error)}.` :
    `Exact: ${si(table.held)} of at most ${si(table.capacity)} held.`;
  $("talkers-note").textContent = table.rows.length ? note : "";
  if (!table.rows.length) $("talkers-error").textContent = "No conversations yet.";
}

// -- starting a session ----------------------------------------------------------------------

function formSpec() {
  const name = $("f-name").value.trim();
  const type = $("f-type").value;
  const spec = { name, source: { type } };
  if (type === "file") spec.source.path = $("f-interface").value.trim();
  else spec.source.interface = $("f-interface").value.trim();
  const filter = $("f-filter").value.trim();
  if (filter) spec.filter = filter;
  const sink = $("f-sink").value;
  if (sink) spec.sinks = [{ type: sink, path: $("f-path").value.trim() || defaultPath() }];
  const duration = Number($("f-duration").value);
  if (duration > 0) spec.duration = duration;
  const snaplen = Number($("f-snaplen").value);
  if (snaplen > 0) spec.snaplen = snaplen;
  return spec;
}

function defaultPath() {
  const name = $("f-name").value.trim() || "capture";
  return `${name}.${$("f-sink").value || "pcap"}`;
}

function syncSpec() {
  $("f-path").placeholder = defaultPath();
  $("f-path").disabled = !$("f-sink").value;
  const file = $("f-type").value === "file";
  $("f-interface-label").textContent = file ? "File" : "Interface";
  $("f-interface").placeholder = file ? "trace.pcap" : "eth0";
  if (!$("spec-details").open) $("spec-json").value = JSON.stringify(formSpec(), null, 2);
}

function clearFormErrors() {
  for (const box of document.querySelectorAll("#start-form pre.error")) box.textContent = "";
}

// A refused spec's message is "request: KEY: PROBLEM" (a filter's PROBLEM holds the expression
// and a caret under the fault): it is shown under the field KEY names.
function showSpecError(message) {
  const match = /^request: ([^:\n]+): ([\s\S]*)$/.exec(message);
  let key = match ? match[1] : "";
  let text = match ? match[2] : message;
  if (/^no such interface/i.test(message) || /interface .* (not|does)/i.test(message)) {
    key = "source.interface";
    text = message;
  }
  if (key === "source.path") key = "source.interface";
  if (/^sinks\[\d+\]/.test(key)) key = "sinks[0].path";
  const box = document.querySelector(`#start-form pre.error[data-key="${CSS.escape(key)}"]`);
  if (box && !$("spec-details").open) box.textContent = text;
  else $("start-error").textContent = message;
}

async function startSession(event) {
  event.preventDefault();
  clearFormErrors();
  let spec;
  if ($("spec-details").open) {
    try {
      spec = JSON.parse($("spec-json").value);
    } catch (err) {
      $("start-error").textContent = `The JSON does not parse: ${err.message}`;
      return;
    }
  } else {
    spec = formSpec();
  }
  $("start-button").disabled = true;
  try {
    const info = await api.post("/v1/sessions", spec);
    toast(`Started ${info.name}`);
    await poll();
    select(info.name);
    refreshFiles();
  } catch (err) {
    if (err.status !== 401) showSpecError(err.message);
  } finally {
    $("start-button").disabled = false;
  }
}

// -- files -----------------------------------------------------------------------------------

function showFiles(name) {
  const box = $("files-session");
  if (![...box.options].some((o) => o.value === name)) box.append(el("option", { value: name }, name));
  box.value = name;
  refreshFiles();
  $("files-panel").scrollIntoView({ block: "nearest" });
}

async function refreshFiles(force = false) {
  if (force === true) state.filesShown = "";
  const session = $("files-session").value;
  let body;
  try {
    body = await api.get(`/v1/files${session ? `?session=${enc(session)}` : ""}`);
  } catch (err) {
    if (err.status !== 401) $("files-dir").textContent = `Listing failed: ${err.message}`;
    return;
  }
  $("files-dir").textContent = body.directory;
  const listing = JSON.stringify(body.files);
  if (listing === state.filesShown) return;
  state.filesShown = listing;
  const rows = body.files.map((f) => el("tr", { dataset: { file: f.name }, class: f.name === state.lastDump ? "selected" : "" },
    el("td", { class: "mono" }, f.name, f.writing ? el("span", { class: "badge running" }, "writing") : null),
    el("td", {}, f.session || "—"),
    el("td", { class: "num", title: `${f.size} bytes` }, si(f.size, "B")),
    el("td", { class: "num" }, f.format ? `${f.packets}${f.complete ? "" : "+"}` : "—"),
    el("td", {}, when(f.first_packet)),
    el("td", {}, when(f.last_packet)),
    el("td", { title: f.error || "" }, f.format ? `${f.format} ${f.linktype || ""}` : f.error ? "not a capture" : "—"),
    el("td", { class: "mono" }, `${f.mode} ${f.group}`),
    el("td", { class: "actions" },
      el("button", { type: "button", class: "download", onclick: () => download(f.name) }, "Download"),
      el("button", {
        type: "button", class: "delete", disabled: f.writing,
        title: f.writing ? "a running session writes it" : "", onclick: () => deleteFile(f.name),
      }, "Delete")),
  ));
  $("files").tBodies[0].replaceChildren(...rows);
  $("no-files").hidden = rows.length > 0;
}

async function download(name) {
  // The token travels in a header, which a plain link cannot send: fetch, then save the blob.
  try {
    const resp = await api.get(filePath(name), { raw: true });
    const blob = await resp.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name.split("/").pop() });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    toast(`Downloaded ${name} (${si(blob.size, "B")})`);
  } catch (err) {
    if (err.status !== 401) toast(`Download of ${name} failed: ${err.message}`, true);
  }
}

async function deleteFile(name) {
  if (!window.confirm(`Delete ${name}?`)) return;
  try {
    await api.del(filePath(name));
    toast(`Deleted ${name}`);
  } catch (err) {
    if (err.status !== 401) toast(`Delete of ${name} failed: ${err.message}`, true);
  }
  refreshFiles();
}

// -- live stream: the session's pcap stream, decoded to one line per packet -------------------

function closeStream() {
  if (state.stream) state.stream.controller.abort();
  state.stream = null;
  $("stream-open").hidden = false;
  $("stream-close").hidden = true;
}

async function openStream(event) {
  event.preventDefault();
  const name = state.selected;
  if (!name) return;
  closeStream();
  $("stream-error").textContent = "";
  $("stream-lines").replaceChildren();
  const controller = new AbortController();
  const stream = { controller, name, packets: 0, bytes: 0 };
  state.stream = stream;
  const filter = $("stream-filter").value.trim();
  const query = filter ? `?filter=${enc(filter)}` : "";
  let resp;
  try {
    resp = await api.get(sessionPath(name, `/pcap${query}`), { raw: true, signal: controller.signal });
  } catch (err) {
    if (err.name !== "AbortError" && err.status !== 401) $("stream-error").textContent = err.message;
    if (state.stream === stream) closeStream();
    return;
  }
  $("stream-open").hidden = true;
  $("stream-close").hidden = false;
  $("stream-status").textContent = "Streaming…";
  const reader = new PcapReader((pkt, linktype) => {
    stream.packets += 1;
    stream.bytes += pkt.wire;
    addLine(formatPacket(pkt, linktype));
  });
  try {
    const body = resp.body.getReader();
    for (;;) {
      const { value, done } = await body.read();
      if (done) break;
      reader.push(value);
      $("stream-status").textContent = `${stream.packets} packets, ${si(stream.bytes, "B")} received`;
    }
    $("stream-status").textContent = `Stream ended: ${stream.packets} packets.`;
  } catch (err) {
    $("stream-status").textContent = `Stream closed: ${stream.packets} packets.`;
  }
  if (state.stream === stream) closeStream();
}

function addLine(text) {
  const box = $("stream-lines");
  box.append(el("div", {}, text));
  while (box.childElementCount > STREAM_LINES) box.firstElementChild.remove();
  box.scrollTop = box.scrollHeight;
}

// -- wiring ----------------------------------------------------------------------------------

function main() {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    signIn($("token").value.trim());
  });
  $("logout").addEventListener("click", () => signOut(""));
  $("start-form").addEventListener("submit", startSession);
  $("start-form").addEventListener("input", syncSpec);
  $("start-form").addEventListener("change", syncSpec);
  $("spec-details").addEventListener("toggle", () => { if ($("spec-details").open) clearFormErrors(); });
  $("files-refresh").addEventListener("click", refreshFiles);
  $("files-session").addEventListener("change", refreshFiles);
  $("stream-form").addEventListener("submit", openStream);
  $("stream-close").addEventListener("click", () => {
    closeStream();
    $("stream-status").textContent = "Stream closed.";
  });
  $("talkers-by").addEventListener("change", pollSelected);
  $("talkers-kind").addEventListener("change", pollSelected);
  setInterval(() => { if (!$("app").hidden) refreshFiles(); }, 10 * POLL_MS);
  syncSpec();
  if (token()) signIn(token());
  else signOut("");
}

main();
