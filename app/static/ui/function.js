// One function's page: details, replicas, charts, invoke, logs, scale and delete.
"use strict";

(() => {
  const {el, clear, api, json, showMessage, withNamespace, namespace, bytes, when, lines} = UI;
  const name = document.getElementById("function").dataset.name;
  const $ = (id) => document.getElementById(id);
  const errorBox = $("error");
  const statusPath = `/system/function/${encodeURIComponent(name)}`;

  // Details ------------------------------------------------------------------------------------

  function pairs(object) {
    const entries = Object.entries(object || {});
    if (!entries.length) return "–";
    return el("ul", {class: "pairs"}, ...entries.map(([key, value]) => el("li", {}, el("code", {}, key), " = ", el("code", {}, value))));
  }

  function resources(r) {
    if (!r) return "–";
    return [r.memory && `memory ${r.memory}`, r.cpu && `cpu ${r.cpu}`].filter(Boolean).join(", ") || "–";
  }

  function renderDetails(fn) {
    const usage = fn.usage
      ? `${fn.usage.cpu === undefined ? "–" : Number(fn.usage.cpu).toFixed(1)} cpu, ${bytes(fn.usage.totalMemoryBytes)} memory`
      : "–";
    const rows = [
      ["Image", el("code", {}, fn.image)],
      ["Process", fn.envProcess ? el("code", {}, fn.envProcess) : "–"],
      ["Namespace", fn.namespace],
      ["Created", when(fn.createdAt)],
      ["Invocations", fn.invocationCount],
      ["Replicas", `${fn.availableReplicas} available of ${fn.replicas}`],
      ["Usage", usage],
      ["Environment", pairs(fn.envVars)],
      ["Labels", pairs(fn.labels)],
      ["Annotations", pairs(fn.annotations)],
      ["Secrets", fn.secrets && fn.secrets.length ? fn.secrets.join(", ") : "–"],
      ["Limits", resources(fn.limits)],
      ["Requests", resources(fn.requests)],
      ["Constraints", fn.constraints && fn.constraints.length ? fn.constraints.join(", ") : "–"],
      ["Read-only root", fn.readOnlyRootFilesystem ? "yes" : "no"],
      ["Last update", fn.rollout ? `${fn.rollout.state.replace("_", " ")}${fn.rollout.message ? `: ${fn.rollout.message}` : ""}` : "–"],
    ];
    clear($("details")).append(...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    const [label, kind] = fn.replicas === 0 ? ["scaled to zero", "zero"] : fn.availableReplicas > 0 ? ["ready", "ready"] : ["not ready", "notready"];
    const badge = $("state");
    badge.className = `badge ${kind}`;
    badge.textContent = label;
    if (document.activeElement !== $("replicas")) $("replicas").value = fn.replicas;
  }

  function renderInstances(instances) {
    // Each replica as /system/function/{name}/instances lists it.
    clear(document.querySelector("#instances tbody")).append(...instances.map((replica) => {
      const health = replica.health;
      const healthText = health.status === "unhealthy" && health.failingStreak ? `unhealthy (${health.failingStreak} failed)` : health.status;
      const ended = replica.exitCode !== null && replica.exitCode !== undefined ? `, exit ${replica.exitCode}` : "";
      return el("tr", {},
        el("td", {class: "mono"}, replica.id.slice(0, 12)),
        el("td", {}, replica.node || "–"),
        el("td", {title: replica.error || ""}, `${replica.state}${replica.desiredState !== replica.state ? ` (to ${replica.desiredState})` : ""}${ended}`),
        // Whether the gateway's probes passed, so it gets calls; unknown while nobody probes.
        el("td", {}, replica.ready === true ? "ready" : replica.ready === false ? "not ready" : "–"),
        el("td", {title: health.lastOutput || ""}, healthText),
        el("td", {class: "num", title: replica.unmeasured || ""}, replica.cpu >= 0 ? `${replica.cpu.toFixed(0)}m` : "–"),
        el("td", {class: "num", title: replica.unmeasured || ""}, bytes(replica.memoryBytes)),
        el("td", {}, when(replica.startedAt)));
    }));
    clear($("instance-list")).append(...instances.map((replica) => el("option", {value: replica.id})));
  }

  async function refresh() {
    try {
      renderDetails(await json("GET", withNamespace(statusPath, {usage: "1"})));
      showMessage(errorBox, "");
    } catch (error) {
      showMessage(errorBox, error.message);
      return;
    }
    try {
      const instances = await json("GET", withNamespace(`${statusPath}/instances`));
      renderInstances(instances);
      // Why a node's replicas have no figures (its agent did not answer, say), once per node.
      const reasons = [...new Set(instances.map((replica) => replica.unmeasured).filter(Boolean))];
      $("instances-note").textContent = reasons.length ? `Not measured: ${reasons.join("; ")}` : "";
    } catch (error) {
      $("instances-note").textContent = `Replicas: ${error.message}`;
    }
  }

  // Charts -------------------------------------------------------------------------------------

  async function refreshCharts() {
    let series;
    try {
      series = await json("GET", withNamespace(`${statusPath}/series`));
    } catch (error) {
      clear($("charts")).append(el("p", {class: "error"}, error.message));
      return;
    }
    $("interval").textContent = series.interval;
    const points = series.points;
    const end = Date.now() / 1000, start = end - 3600;
    const codes = [...new Set(points.flatMap((p) => Object.keys(p.calls)))].sort();
    const pick = (key, scale) => points.map((p) => [p.t, p[key] === null || p[key] === undefined ? null : p[key] * (scale || 1)]);
    clear($("charts")).append(
      Charts.line("Calls per second by status", "calls/s",
        codes.length ? codes.map((code) => ({name: code, points: points.map((p) => [p.t, p.calls[code] || 0])}))
          : [{name: "all", points: points.map((p) => [p.t, 0])}], start, end),
      Charts.line("Latency", "ms", [{name: "p50", points: pick("p50", 1000)}, {name: "p99", points: pick("p99", 1000)}], start, end),
      Charts.line("Replicas", "count", [{name: "desired", points: pick("replicas")}, {name: "available", points: pick("available")}], start, end),
      Charts.line("CPU", "millicores", [{name: "cpu", points: pick("cpu")}], start, end),
      Charts.line("Memory", "MiB", [{name: "memory", points: pick("memory", 1 / 1048576)}], start, end));
  }

  // Invoke -------------------------------------------------------------------------------------

  const bodyKind = () => document.querySelector("input[name=body-kind]:checked").value;

  function syncBodyKind() {
    const file = bodyKind() === "file";
    $("body").hidden = file;
    document.querySelector("label[for=body]").hidden = file;
    $("body-file").hidden = !file;
    document.querySelector("label[for=body-file]").hidden = !file;
  }

  function requestHeaders() {
    const headers = new Headers();
    for (const [index, raw] of $("headers").value.split("\n").entries()) {
      const line = raw.trim();
      if (!line) continue;
      const at = line.indexOf(":");
      if (at <= 0) throw new Error(`Headers, line ${index + 1}: write Name: value.`);
      headers.append(line.slice(0, at).trim(), line.slice(at + 1).trim());
    }
    return headers;
  }

  function requestBody(method, headers) {
    if (method === "GET" || method === "HEAD") return undefined;
    const kind = bodyKind();
    if (kind === "file") {
      const file = $("body-file").files[0];
      if (file && file.type && !headers.has("Content-Type")) headers.set("Content-Type", file.type);
      return file;
    }
    const text = $("body").value;
    if (kind === "json") {
      try {
        JSON.parse(text);
      } catch (error) {
        throw new Error(`Body is not JSON: ${error.message}`);
      }
      if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
    }
    return text;
  }

  async function showBody(response, method) {
    const buffer = method === "HEAD" ? new ArrayBuffer(0) : await response.arrayBuffer();
    const type = response.headers.get("Content-Type") || "";
    const output = $("result-body");
    const link = $("result-download");
    link.hidden = true;
    let text;
    try {
      text = new TextDecoder("utf-8", {fatal: true}).decode(buffer);
    } catch {
      const url = URL.createObjectURL(new Blob([buffer], {type: type || "application/octet-stream"}));
      link.href = url;
      link.hidden = false;
      output.textContent = `${buffer.byteLength} bytes of binary data`;
      return;
    }
    if (type.includes("json")) {
      try {
        text = JSON.stringify(JSON.parse(text), null, 2);
      } catch { /* shown as it came */ }
    }
    output.textContent = text;
  }

  async function invoke(event) {
    event.preventDefault();
    const result = $("result");
    const method = $("async").checked ? "POST" : $("method").value;
    let headers, body;
    try {
      headers = requestHeaders();
      body = requestBody(method, headers);
    } catch (error) {
      result.hidden = false;
      $("result-status").textContent = "not sent";
      $("result-body").textContent = error.message;
      return;
    }
    if ($("async").checked && $("callback").value.trim()) headers.set("X-Callback-Url", $("callback").value.trim());
    let path = $("path").value.trim() || "/";
    if (!path.startsWith("/")) path = `/${path}`;
    const query = $("query").value.trim().replace(/^\?/, "");
    const route = $("async").checked ? "async-function" : "function";
    const url = `/${route}/${encodeURIComponent(name)}.${encodeURIComponent(namespace)}${path === "/" ? "" : path}${query ? `?${query}` : ""}`;
    const started = performance.now();
    let response;
    try {
      response = await fetch(url, {method, headers, body, credentials: "omit", redirect: "manual"});
    } catch (error) {
      result.hidden = false;
      $("result-status").textContent = "failed";
      $("result-body").textContent = error.message;
      return;
    }
    await showBody(response, method);
    const elapsed = performance.now() - started;
    result.hidden = false;
    $("result-status").textContent = `${response.status} ${response.statusText}`.trim();
    $("result-time").textContent = `${elapsed.toFixed(0)} ms`;
    const callId = response.headers.get("X-Call-Id");
    $("result-call").textContent = callId ? `· Call id ${callId}` : "";
    $("result-headers").textContent = [...response.headers].map(([key, value]) => `${key}: ${value}`).join("\n");
  }

  // Logs ---------------------------------------------------------------------------------------

  let logsAbort = null;
  const MAX_LINES = 5000;

  async function followLogs(event) {
    event.preventDefault();
    if (logsAbort) logsAbort.abort();
    const abort = logsAbort = new AbortController();
    const output = clear($("logs"));
    const query = {name, tail: $("tail").value || "0", follow: $("follow").checked ? "true" : "false"};
    if ($("instance").value.trim()) query.instance = $("instance").value.trim();
    if ($("since").value) query.since = new Date(Date.now() - Number($("since").value) * 1000).toISOString();
    $("logs-stop").disabled = false;
    $("logs-status").textContent = query.follow === "true" ? "Following…" : "Loading…";
    try {
      const response = await api("GET", withNamespace("/system/logs", query), undefined, {signal: abort.signal});
      if (!response.ok) throw new Error((await response.text()).trim());
      for await (const line of lines(response)) {
        if (!line.trim()) continue;
        let message;
        try {
          message = JSON.parse(line);
        } catch {
          message = {text: line};
        }
        output.append(el("span", {class: "line"},
          el("span", {class: "ts"}, message.timestamp ? new Date(message.timestamp).toLocaleTimeString() : ""), " ",
          el("span", {class: "inst"}, (message.instance || "").slice(0, 8)), " ",
          message.text || ""), "\n");
        while (output.childNodes.length > 2 * MAX_LINES) output.firstChild.remove();
        output.scrollTop = output.scrollHeight;
      }
      $("logs-status").textContent = "The stream ended (its deadline, or no follow).";
    } catch (error) {
      $("logs-status").textContent = error.name === "AbortError" ? "Stopped." : error.message;
    } finally {
      if (logsAbort === abort) $("logs-stop").disabled = true;
    }
  }

  // Scale and delete ---------------------------------------------------------------------------

  async function scale(event) {
    event.preventDefault();
    const replicas = Number($("replicas").value);
    try {
      await json("POST", `/system/scale-function/${encodeURIComponent(name)}`, {serviceName: name, replicas, namespace});
      $("scale-result").textContent = `Scaling to ${replicas}.`;
      refresh();
    } catch (error) {
      $("scale-result").textContent = error.message;
    }
  }

  $("confirm-delete").addEventListener("close", async () => {
    if ($("confirm-delete").returnValue !== "delete") return;
    try {
      await json("DELETE", "/system/functions", {functionName: name, namespace});
      location.assign(`/ui/?namespace=${encodeURIComponent(namespace)}`);
    } catch (error) {
      showMessage(errorBox, error.message);
    }
  });

  $("delete").addEventListener("click", () => {
    $("confirm-delete").returnValue = "";
    $("confirm-delete").showModal();
  });
  $("delete").disabled = false;
  UI.onSubmit($("scale-form"), scale);
  UI.onSubmit($("invoke-form"), invoke);
  UI.onSubmit($("logs-form"), followLogs);
  $("logs-stop").addEventListener("click", () => logsAbort && logsAbort.abort());
  document.querySelectorAll("input[name=body-kind]").forEach((radio) => radio.addEventListener("change", syncBodyKind));
  syncBodyKind();
  refresh();
  refreshCharts();
  setInterval(refresh, 5000);
  setInterval(refreshCharts, 10000);
})();
