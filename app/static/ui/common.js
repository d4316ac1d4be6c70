// Shared by every dashboard page: API calls with the session's CSRF token, DOM building that
// only ever inserts text (never HTML), the namespace picker and small formatters.
"use strict";

const UI = (() => {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const csrf = meta("csrf-token");
  const defaultNamespace = meta("default-namespace");
  const params = new URLSearchParams(location.search);
  const namespace = params.get("namespace") || sessionStorage.getItem("namespace") || defaultNamespace;

  // el("a", {href: "/x", class: "y"}, "text", child): children that are not nodes become text nodes.
  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  // A path of the API with the chosen namespace added to its query.
  function withNamespace(path, extra) {
    const query = new URLSearchParams(extra || {});
    query.set("namespace", namespace);
    return `${path}?${query}`;
  }

  // fetch for the gateway's own API: the session cookie goes along, changes carry the CSRF token,
  // and a lost session goes back to the sign-in form.
  async function api(method, path, body, options) {
    const headers = {"X-CSRF-Token": csrf};
    const init = {method, headers, credentials: "same-origin", ...(options || {})};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      location.assign(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      throw new ApiError(401, "Signed out: sign in again.");
    }
    return response;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // The API's answer as JSON, or an ApiError carrying its status and its one-sentence body.
  async function json(method, path, body) {
    const response = await api(method, path, body);
    if (!response.ok) throw new ApiError(response.status, (await response.text()).trim() || response.statusText);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }

  function showMessage(node, text) {
    node.textContent = text || "";
    node.hidden = !text;
  }

  function setupNamespacePicker() {
    const picker = document.getElementById("namespace");
    if (!picker) return;
    sessionStorage.setItem("namespace", namespace);
    json("GET", "/system/namespaces").then((names) => {
      const all = names.includes(namespace) ? names : [namespace, ...names];
      clear(picker).append(...all.map((name) => el("option", {value: name, selected: name === namespace}, name)));
    }).catch(() => {});
    picker.addEventListener("change", () => {
      sessionStorage.setItem("namespace", picker.value);
      const next = new URLSearchParams(location.search);
      next.set("namespace", picker.value);
      location.assign(`${location.pathname}?${next}`);
    });
  }

  function functionPage(name, inNamespace = namespace) {
    return `/ui/function/${encodeURIComponent(name)}?namespace=${encodeURIComponent(inNamespace)}`;
  }

  function bytes(count) {
    if (count === null || count === undefined || count < 0) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = count, unit = 0;
    while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    return seconds < 1 ? `${(seconds * 1000).toFixed(0)} ms` : `${seconds.toFixed(2)} s`;
  }

  function when(text) {
    if (!text) return "–";
    const date = new Date(text);
    return isNaN(date) ? String(text) : date.toLocaleString();
  }

  // One line of "key=value" text per entry; an object for the API, or an error naming the field
  // and the line as the API's own 400 sentences do ("Invalid envVars: ...").
  function parsePairs(text, field) {
    const pairs = {};
    for (const [index, raw] of text.split("\n").entries()) {
      const line = raw.trim();
      if (!line) continue;
      const at = line.indexOf("=");
      if (at <= 0) throw new Error(`Invalid ${field}: line ${index + 1} is not key=value.`);
      pairs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return pairs;
  }

  function pairsText(object) {
    return Object.entries(object || {}).map(([key, value]) => `${key}=${value}`).join("\n");
  }

  // Lines of a streamed NDJSON or SSE body as they arrive; ends when the body ends or `signal` aborts.
  async function* lines(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      pending += decoder.decode(value, {stream: true});
      const parts = pending.split("\n");
      pending = parts.pop();
      yield* parts;
    }
    if (pending) yield pending;
  }

  // Handle a form's submit with `handler`, then enable its submit buttons: they are rendered
  // disabled, so a form used before its script has run is not sent as a plain page request
  // (which would reload the page and lose what was typed).
  function onSubmit(form, handler) {
    form.addEventListener("submit", handler);
    form.querySelectorAll("[type=submit]").forEach((button) => { button.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", setupNamespacePicker);
  return {el, clear, api, json, ApiError, showMessage, withNamespace, namespace, functionPage, bytes, duration,
          when, parsePairs, pairsText, lines, onSubmit};
})();
