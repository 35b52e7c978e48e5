// labstream fleet page. Every value shown comes from topics anyone may write to:
// it is only ever set as text (textContent), never as HTML.
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function cell(row, text, cls, small) {
  const td = el("td", text, cls);
  if (small) td.appendChild(el("span", small, "small"));
  row.appendChild(td);
  return td;
}

function bytes(n) {
  n = Number(n) || 0;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
}

function ago(seconds) {
  if (!seconds && seconds !== 0) return "";
  seconds = Math.max(0, seconds);
  if (seconds < 90) return Math.round(seconds) + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function when(at, now) { return at ? ago(now - at) : "—"; }

const TRUST_TEXT = {
  "signed": "signed", "untrusted-key": "untrusted key", "unsigned": "unsigned",
  "unchecked": "unchecked", "bad-signature": "bad signature",
};

function stateCell(row, item) {
  const td = cell(row, "");
  td.appendChild(el("span", item.state, "badge state-" + item.state));
  td.appendChild(el("span", TRUST_TEXT[item.trust] || item.trust, "badge trust-" + item.trust));
  td.appendChild(el("span", "beat " + ago(item.age), "small"));
  if (item.refused) {
    // Beats naming this row that its owner did not sign: never applied, shown here.
    const alert = el("span", item.refused + " forged beat" + (item.refused === 1 ? "" : "s") + " refused",
      "badge alert");
    alert.title = item.refused_reason;
    td.appendChild(alert);
    td.appendChild(el("span", item.refused_reason + (item.refused_at ? ", last " + ago(item.age_now - item.refused_at) : ""),
      "small refused"));
  }
}

function fill(tableId, items, render) {
  const body = document.querySelector("#" + tableId + " tbody");
  const rows = items.map(render);
  body.replaceChildren(...rows);
}

function renderInstrument(now) {
  return (i) => {
    const row = el("tr");
    row.dataset.instance = i.instance;
    row.dataset.state = i.state;
    stateCell(row, i);
    cell(row, i.source || i.host, "", i.source ? i.host + ": " + i.folder : i.folder);
    cell(row, i.topic);
    cell(row, i.queued_files + " files", "num", bytes(i.queued_bytes));
    cell(row, i.in_flight, "num");
    cell(row, bytes(i.rate) + "/s", "num");
    cell(row, i.sent, "num", bytes(i.bytes));
    cell(row, i.last_file || "—", "last-sent", when(i.last_file_at, now));
    cell(row, i.last_verified || "—", "last-verified",
      i.last_verified ? when(i.last_verified_at, now) + " by " + i.last_verified_by : "");
    const failures = [];
    if (i.failed) failures.push(i.failed + " not sent");
    if (i.downstream_failed) failures.push(i.downstream_failed + " failed downstream");
    const td = cell(row, failures.join(", ") || "none", "failures");
    if (i.downstream_reason) {
      td.appendChild(el("span", i.downstream_reason + " (" + i.downstream_by + ", " + when(i.downstream_at, now) + ")",
        "reason downstream-reason"));
    }
    if (i.last_error) td.appendChild(el("span", i.last_error, "reason"));
    return row;
  };
}

function renderConsumer(now) {
  return (c) => {
    const row = el("tr");
    row.dataset.instance = c.instance;
    row.dataset.state = c.state;
    stateCell(row, c);
    cell(row, c.role);
    cell(row, c.host, "", c.folder);
    cell(row, c.grp);
    cell(row, c.topic);
    const lag = cell(row, c.lag_files ?? "?", "num lag-files");
    lag.appendChild(el("span", (c.lag_messages ?? "?") + " msg", "small lag-messages"));
    cell(row, c.verified, "num", bytes(c.bytes));
    cell(row, c.failed, "num failed-files");
    cell(row, c.last_file || "—");
    cell(row, c.last_reason || c.last_error || "", "reason");
    return row;
  };
}

function renderFailure(now) {
  return (f) => {
    const row = el("tr");
    cell(row, when(f.at, now));
    cell(row, f.topic);
    cell(row, f.path, "path");
    cell(row, f.source);
    cell(row, f.reason, "reason").title = f.detail;
    return row;
  };
}

function renderLive(now) {
  return (f) => {
    const row = el("tr");
    cell(row, f.path, "path");
    cell(row, f.source || "—");
    cell(row, f.topic);
    cell(row, "live, " + bytes(f.size) + " verified so far", "live-verified");
    cell(row, f.grp);
    cell(row, when(f.at, now));
    return row;
  };
}

let chart = null;
function renderChart(series) {
  const data = [series.t, series.sent.map((b) => b / 60), series.verified.map((b) => b / 60),
    series.failed.map((b) => b / 60)];
  const box = document.getElementById("chart");
  if (typeof uPlot === "undefined") return;
  if (!chart) {
    chart = new uPlot({
      width: Math.max(300, box.clientWidth || 500), height: 200,
      series: [{}, { label: "sent", stroke: "#2e90fa", width: 2 },
        { label: "verified", stroke: "#12b76a", width: 2 }, { label: "failed", stroke: "#f04438", width: 2 }],
      // Wide enough for "1023.9 KiB/s" in full.
      axes: [{}, { values: (u, ticks) => ticks.map((v) => bytes(v) + "/s"), size: 100 }],
    }, data, box);
  } else {
    chart.setData(data);
  }
}

function card(title, value, detail, tone) {
  const box = el("div", "", "card " + (tone || ""));
  box.appendChild(el("div", title, "card-title"));
  box.appendChild(el("div", value, "card-value"));
  for (const line of detail || []) box.appendChild(el("div", line, "small"));
  return box;
}

function renderSummary(s, now) {
  const n = s.instruments;
  const cards = [
    card("Instruments", n.alive + " alive · " + n.stale + " stale · " + n.stopped + " stopped",
      s.stale_consumers ? [s.stale_consumers + " downloader/processor stale"] : [],
      n.stale || s.stale_consumers ? "bad" : "good"),
    card("Verified, 24 h", s.verified_files + " files", [bytes(s.verified_bytes)]),
    card("Failed, 24 h", s.failed_files + " files",
      s.top_reasons.map((r) => r.reason + " (" + r.files + (r.files === 1 ? " file)" : " files)")), s.failed_files ? "bad" : ""),
    card("Backlog", s.queued_files + " files queued",
      s.oldest_unverified ? ["oldest unverified: " + s.oldest_unverified.path + ", sent "
        + when(s.oldest_unverified.at, now)] : ["every sent file has a receipt"]),
    card("Groups behind", s.behind.length ? s.behind.length + " group" + (s.behind.length === 1 ? "" : "s") : "none",
      s.behind.map((g) => g.grp + " on " + g.topic + ": " + g.files + " files")),
  ];
  document.getElementById("summary-cards").replaceChildren(...cards);
  const attention = document.getElementById("attention");
  const lines = s.attention.slice();
  if (s.dropped_instances) lines.push(s.dropped_instances + " unknown unsigned instances dropped (a flood?)");
  attention.textContent = s.attention.length ? "Needs a person: " + lines.join(" · ")
    : "All well" + (lines.length ? " · " + lines.join(" · ") : "");
  attention.className = s.attention.length ? "bad" : "good";
}

function render(view) {
  const fleet = view.fleet;
  const now = fleet.now;
  for (const item of fleet.instruments.concat(fleet.consumers)) item.age_now = now;
  renderSummary(fleet.summary, now);
  fill("instruments", fleet.instruments, renderInstrument(now));
  fill("consumers", fleet.consumers, renderConsumer(now));
  fill("failures", fleet.failures, renderFailure(now));
  fill("live", fleet.live || [], renderLive(now));
  const rejected = Object.entries(fleet.rejected || {}).map(([k, v]) => v + " " + k);
  document.getElementById("rejected").textContent = rejected.join(", ");
  document.getElementById("updated").textContent = "updated " + new Date(now * 1000).toLocaleTimeString();
  renderChart(view.throughput);
}

function connect() {
  const status = document.getElementById("connection");
  const source = new EventSource("/events");
  source.addEventListener("view", (event) => {
    status.textContent = "live";
    status.className = "badge live";
    render(JSON.parse(event.data));
  });
  source.onerror = () => {
    status.textContent = "reconnecting…";
    status.className = "badge down";
  };
}

async function find(event) {
  event.preventDefault();
  const query = document.getElementById("query").value;
  const box = document.getElementById("results");
  const answer = await fetch("/api/search?q=" + encodeURIComponent(query));
  const results = (await answer.json()).results;
  const now = Date.now() / 1000;
  box.replaceChildren(...(results.length ? results.map((r) => {
    const div = el("div", "", "file");
    div.appendChild(el("strong", r.path));
    div.appendChild(el("span", "topic " + r.topic + ", sha256 " + r.sha256.slice(0, 12) + "…", "small"));
    if (r.sent) {
      // The watcher's own time, once the cluster acknowledged every chunk: a downloader may
      // verify the file a moment before that.
      const text = r.sent.outcome === "sent" ? "sent (acknowledged) " : "failed to send ";
      div.appendChild(el("div", text + when(r.sent.at, now) + " from " + r.sent.host + " (" + bytes(r.sent.size) + ")",
        r.sent.outcome === "failed" ? "reason" : ""));
      if (r.sent.reason) div.appendChild(el("div", r.sent.reason, "reason"));
    } else {
      div.appendChild(el("div", "no heartbeat reported sending it", "small"));
    }
    for (const v of r.receipts) {
      div.appendChild(el("div", v.outcome + " by " + v.grp + " on " + v.host + " " + when(v.at, now)
        + (v.reason ? ": " + v.reason : ""), v.outcome === "failed" ? "reason" : ""));
    }
    return div;
  }) : [el("div", "no file matches", "small")]));
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("submit", find);
  connect();
});
