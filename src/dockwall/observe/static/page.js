"use strict";
// Everything shown goes through textContent: names and labels are untrusted.
const token = new URLSearchParams(location.search).get("token");
const withToken = (path) => token ? `${path}?token=${encodeURIComponent(token)}` : path;
const headers = token ? { Authorization: `Bearer ${token}` } : {};

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  row.appendChild(td);
}

async function refresh() {
  const response = await fetch("/api/state", { headers });
  if (!response.ok) { document.getElementById("status").textContent = `error ${response.status}`; return; }
  const state = await response.json();
  const held = state.defaults || {};
  document.getElementById("status").textContent = `backend ${state.backend || "none"}, ` +
    `${state.containers.length} containers; defaults dropped ${held.ingress || 0} in, ` +
    `${held.egress || 0} out, ${held.peers || 0} between peers`;
  const body = document.querySelector("#containers tbody");
  body.replaceChildren();
  for (const c of state.containers) {
    const row = document.createElement("tr");
    row.className = "container";
    cell(row, c.project ? `${c.name} [${c.project}/${c.service || ""}]` : c.name);
    cell(row, c.addresses.join(" "));
    if (c.dropped) { cell(row, c.dropped.ingress); cell(row, c.dropped.egress); cell(row, c.allowed); }
    else { cell(row, "defaults"); cell(row, "defaults"); cell(row, ""); }
    body.appendChild(row);
  }
  document.getElementById("graph-img").src = withToken("/graph.svg") + (token ? "&" : "?") + "t=" + Date.now();
}

function drop(entry) {
  const body = document.querySelector("#drops tbody");
  const row = document.createElement("tr");
  if (entry.kind === "drop") {
    row.className = `drop ${entry.direction}`;
    cell(row, (entry.time || "").slice(11, 23)); cell(row, entry.direction);
    cell(row, entry.container || `(${entry.address})`);
    cell(row, `${entry.remote}${entry.port != null ? ":" + entry.port : ""}/${entry.proto}`);
    cell(row, entry.policy);
  } else if (entry.kind === "suppressed" || entry.kind === "lost") {
    row.className = "note";
    cell(row, (entry.time || "").slice(11, 23)); cell(row, entry.kind);
    cell(row, entry.direction || ""); cell(row, entry.count == null ? "unknown" : entry.count);
    cell(row, entry.kind === "lost" ? "records lost" : "more drops over the log rate");
  } else { return; }
  body.prepend(row);
  while (body.rows.length > 200) body.deleteRow(-1);
}

refresh();
setInterval(refresh, 5000);
new EventSource(withToken("/events")).onmessage = (message) => drop(JSON.parse(message.data));
