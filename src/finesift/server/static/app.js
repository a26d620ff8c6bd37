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

// Highlighting. Latin words and numbers are highlighted whole (no "b" inside "Embedding", no "0" inside
// "Q8_0"); CJK has no spaces, so a CJK term is highlighted wherever it occurs as a substring.
const CJK = "\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Hangul}";
const IS_CJK = new RegExp("[" + CJK + "]", "u");
// A letter, digit or underscore that is not CJK: what a Latin word is made of.
const WORD_CHAR = "(?:(?![" + CJK + "])[\\p{L}\\p{N}_])";
const IS_WORD_CHAR = new RegExp("^" + WORD_CHAR + "$", "u");

function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

// The pattern of one term: whole-word edges where the term starts or ends with a Latin word character.
function termPattern(term) {
  const chars = [...term];
  const before = IS_WORD_CHAR.test(chars[0]) ? "(?<!" + WORD_CHAR + ")" : "";
  const after = IS_WORD_CHAR.test(chars[chars.length - 1]) ? "(?!" + WORD_CHAR + ")" : "";
  return before + escapeRegExp(term) + after;
}

// The terms to highlight: the server's BM25 terms and the words as typed ("Q8_0" whole), without
// single CJK characters that a longer term already covers.
function highlightTerms(query, serverTerms) {
  const typed = query.split(/[\s,.;:!?()"'“”‘’，。；：！？、（）]+/u);
  const terms = [...new Set([...serverTerms, ...typed].map((t) => t.trim().toLowerCase()).filter(Boolean))];
  return terms.filter((t) => !([...t].length === 1 && IS_CJK.test(t) &&
                               terms.some((o) => o !== t && o.includes(t))));
}

// Highlight every occurrence of the terms (case-insensitive), building text nodes only.
function highlighted(text, terms) {
  const parts = document.createDocumentFragment();
  const clean = terms.filter((t) => t && t.trim()).sort((a, b) => b.length - a.length);
  if (!clean.length) { parts.append(text); return parts; }
  const pattern = new RegExp("(?:" + clean.map(termPattern).join("|") + ")", "giu");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (!match[0]) continue;
    if (match.index > last) parts.append(text.slice(last, match.index));
    const mark = document.createElement("mark");
    mark.textContent = match[0];
    parts.append(mark);
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.append(text.slice(last));
  return parts;
}

// What a hit's score is (the search response's "score"): the stage that ran last.
const SCORE_LABELS = {
  rerank: ["relevance", "The reranker's probability that the passage answers the query (0–1)"],
  rrf: ["RRF", "Fused rank score of dense and BM25 recall (not a probability; higher is better)"],
  cosine: ["cosine", "Cosine similarity of the query and passage embeddings"],
  bm25: ["BM25", "BM25 keyword score (not a probability; higher is better)"],
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderHits(hits, terms, kind) {
  const list = $("results");
  list.replaceChildren();
  const [label, meaning] = SCORE_LABELS[kind] || ["score", ""];
  hits.forEach((hit, i) => {
    const item = element("li", "hit");
    const head = element("div", "hit-head");
    const where = hit.source + (hit.page ? ` · p.${hit.page}` : "") + ` · [${hit.start}:${hit.end}]`;
    const score = element("span", "score", `${label} ${hit.score.toFixed(4)}`);
    score.title = meaning;
    head.append(element("span", "rank", `${i + 1}.`), score, element("span", "source", where));
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
    renderHits(result.hits, highlightTerms(body.query, result.query_terms || []), result.score);
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

// The citations event of POST /v1/kbs/{kb}/ask: each has the passage "number" the answer cites as [n]
// and "cited" (whether the answer cites it); the passages the answer cites are shown, or all if none.
function renderCitations(citations) {
  const cited = citations.filter((c) => c.cited);
  $("citations").replaceChildren(...(cited.length ? cited : citations).map((c) => {
    const where = (c.source || c.doc_id || "") + (c.page ? ` · p.${c.page}` : "") +
      (c.start !== undefined ? ` · [${c.start}:${c.end}]` : "");
    return element("li", "", `[${c.number}] ${where}`);
  }));
}

// Returns true once [DONE] arrives. Events: {"delta"}, then {"citations", "refused"}, or {"error"}
// when the answer failed mid-stream.
function handleEvent(data) {
  if (data === "[DONE]") return true;
  const event = JSON.parse(data);
  if (event.delta !== undefined) $("answer").append(event.delta);
  if (event.citations) renderCitations(event.citations);
  if (event.refused) {
    $("answer").classList.add("refused");
    $("ask-status").textContent = "No passage was relevant enough to answer from; nothing is cited.";
  }
  if (event.error) {
    $("ask-status").textContent = "The answer stopped early.";
    show(event.error.message || String(event.error));
  }
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
  $("answer").classList.remove("refused");
  $("ask-status").textContent = "";
  $("citations").replaceChildren();
  show("");
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
