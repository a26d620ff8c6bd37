// finesift search page: plain JS, no build step. Talks to the /v1/kbs API of the same origin.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "finesift-api-key";
const KB_STORE = "finesift-kb";

class ApiError extends Error {
  constructor(status, message, code) { super(message); this.status = status; this.code = code; }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.set("Authorization", "Bearer " + key);
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    $("key-section").hidden = false;
    $("api-key").focus();
  }
  if (!response.ok && !options.raw) throw await apiError(response);
  return options.raw ? response : response.json();
}

async function apiError(response) {
  let message = response.status + " " + response.statusText, code = "";
  try {
    const body = await response.json();
    if (body && body.error) { message = body.error.message; code = body.error.code; }
  } catch (_) { /* not JSON */ }
  return new ApiError(response.status, message, code);
}

// kind: "error" (default), "ok" or "info".
function show(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = "message " + kind;
  box.hidden = !text;
}

function currentKB() { return $("kb-select").value; }
function kbPath(suffix = "") { return "/v1/kbs/" + encodeURIComponent(currentKB()) + suffix; }

async function loadKBs(select) {
  const list = await api("/v1/kbs");
  const names = list.data.map((kb) => kb.name);
  const menu = $("kb-select");
  menu.replaceChildren(...names.map((name) => new Option(name, name)));
  const wanted = select || localStorage.getItem(KB_STORE);
  if (names.includes(wanted)) menu.value = wanted;
  if (!names.length) show("No knowledge base yet: create one with “New…”, then upload files.", "info");
  await describeKB();
}

async function describeKB() {
  const info = $("kb-info");
  info.textContent = "";
  if (!currentKB()) return;
  localStorage.setItem(KB_STORE, currentKB());
  try {
    const kb = await api(kbPath());
    info.textContent = `${kb.documents} documents · ${kb.chunks} chunks · ${kb.embedding_model}` +
      (kb.reranker_model ? ` + ${kb.reranker_model}` : "");
  } catch (err) {
    info.textContent = err.message;
  }
}

// Highlight every occurrence of the query's terms (case-insensitive), building text nodes only.
function highlighted(text, terms) {
  const parts = document.createDocumentFragment();
  const clean = terms.filter((t) => t && t.trim()).sort((a, b) => b.length - a.length);
  if (!clean.length) { parts.append(text); return parts; }
  const escaped = clean.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp("(" + escaped.join("|") + ")", "giu");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) parts.append(text.slice(last, match.index));
    const mark = document.createElement("mark");
    mark.textContent = match[0];
    parts.append(mark);
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.append(text.slice(last));
  return parts;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderHits(hits, terms) {
  const list = $("results");
  list.replaceChildren();
  hits.forEach((hit, i) => {
    const item = element("li", "hit");
    const head = element("div", "hit-head");
    const where = hit.source + (hit.page ? ` · p.${hit.page}` : "") + ` · [${hit.start}:${hit.end}]`;
    head.append(element("span", "rank", `${i + 1}.`), element("span", "score", hit.score.toFixed(4)),
                element("span", "source", where));
    const body = element("p", "hit-text");
    body.append(highlighted(hit.text, terms));
    item.append(head, body);
    list.append(item);
  });
}

async function search(event) {
  event.preventDefault();
  if (!currentKB()) { show("Pick or create a knowledge base first."); return; }
  const button = $("search-button");
  button.disabled = true;
  $("search-status").textContent = "Searching…";
  const started = performance.now();
  try {
    const body = { query: $("query").value, mode: $("mode").value, rerank: $("rerank").checked,
                   top_k: Number($("top-k").value) || 5 };
    const result = await api(kbPath("/search"), { method: "POST", json: body });
    renderHits(result.hits, result.query_terms || []);
    const ms = Math.round(performance.now() - started);
    $("search-status").textContent = result.hits.length ? `${result.hits.length} hits in ${ms} ms` : "No hits.";
    show("");
  } catch (err) {
    $("search-status").textContent = "";
    show(err.message);
  } finally {
    button.disabled = false;
  }
}

async function upload(event) {
  event.preventDefault();
  const files = $("upload-input").files;
  if (!currentKB()) { show("Pick or create a knowledge base first."); return; }
  if (!files.length) { show("Choose one or more files to upload."); return; }
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  const button = $("upload-button");
  button.disabled = true;
  $("upload-status").textContent = `Uploading ${files.length} file(s)…`;
  try {
    const r = await api(kbPath("/documents"), { method: "POST", body: form });
    let text = `${r.documents_added} added, ${r.documents_updated} updated, ${r.documents_unchanged} unchanged, ` +
      `${r.documents_failed} failed; ${r.chunks_embedded} chunks embedded.`;
    for (const f of r.failures) text += `\n${f.source}: ${f.reason}`;
    $("upload-status").textContent = text;
    $("upload-input").value = "";
    await describeKB();
  } catch (err) {
    $("upload-status").textContent = "";
    show(err.message);
  } finally {
    button.disabled = false;
  }
}

async function createKB(event) {
  event.preventDefault();
  const name = $("new-kb-name").value.trim();
  try {
    await api("/v1/kbs", { method: "POST", json: { name, rerank: $("new-kb-rerank").checked } });
    $("new-kb-section").hidden = true;
    show(`Created ${name}. Upload files to fill it.`, "ok");
    await loadKBs(name);
  } catch (err) {
    show(err.message);
  }
}

// ---- Ask: POST /v1/kbs/{kb}/ask with stream=true, rendered from its server-sent events ----------

function hideAsk() { $("ask-section").hidden = true; }

async function probeAsk() {
  try {
    const schema = await api("/openapi.json");
    $("ask-section").hidden = !(schema.paths && schema.paths["/v1/kbs/{kb}/ask"]);
  } catch (_) {
    hideAsk();
  }
}

function renderCitations(citations) {
  $("citations").replaceChildren(...citations.map((c, i) => {
    const where = (c.source || c.doc_id || "") + (c.page ? ` · p.${c.page}` : "") +
      (c.start !== undefined ? ` · [${c.start}:${c.end}]` : "");
    return element("li", "", `[${c.index ?? i + 1}] ${where}`);
  }));
}

// Returns true once [DONE] arrives.
function handleEvent(data) {
  if (data === "[DONE]") return true;
  const event = JSON.parse(data);
  if (event.delta !== undefined) $("answer").append(event.delta);
  if (event.citations) renderCitations(event.citations);
  if (event.error) show(event.error.message || String(event.error));
  return false;
}

async function readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      if (data && handleEvent(data)) { reader.cancel(); return; }
    }
  }
}

async function ask(event) {
  event.preventDefault();
  if (!currentKB()) { show("Pick or create a knowledge base first."); return; }
  $("answer").replaceChildren();
  $("citations").replaceChildren();
  const button = $("ask-button");
  button.disabled = true;
  try {
    const response = await api(kbPath("/ask"), {
      method: "POST", raw: true, json: { query: $("ask-query").value, stream: true },
      headers: { Accept: "text/event-stream" },
    });
    if (response.status === 404 || response.status === 501) { hideAsk(); return; }
    if (!response.ok) throw await apiError(response);
    await readEvents(response);
  } catch (err) {
    show(err.message);
  } finally {
    button.disabled = false;
  }
}

async function start() {
  $("search-form").addEventListener("submit", search);
  $("upload-form").addEventListener("submit", upload);
  $("new-kb-form").addEventListener("submit", createKB);
  $("ask-form").addEventListener("submit", ask);
  $("kb-select").addEventListener("change", describeKB);
  $("new-kb-toggle").addEventListener("click", () => {
    $("new-kb-section").hidden = !$("new-kb-section").hidden;
    $("new-kb-name").focus();
  });
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    $("key-section").hidden = true;
    show("");
    await boot();
  });
  await boot();
}

async function boot() {
  try {
    await loadKBs();
    await probeAsk();
  } catch (err) {
    show(err.message);
  }
}

document.addEventListener("DOMContentLoaded", start);
