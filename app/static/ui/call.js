// One async call's page: its record, its result and its earlier runs, refreshed every 5 s; cancel
// while it waits, replay once it has finished.
"use strict";

(() => {
  const {el, clear, json, showMessage, functionPage, duration, when} = UI;
  const $ = (id) => document.getElementById(id);
  const segment = encodeURIComponent($("call").dataset.callId); // the call ID in a path
  const recordPath = `/system/async-calls/${segment}`;
  // The states the API cancels (a call that waits) and replays (a call that has finished) from.
  const CANCELLABLE = ["queued", "retrying"];
  const REPLAYABLE = ["succeeded", "failed", "dead", "cancelled"];

  function callback(delivered) {
    if (delivered === null || delivered === undefined) return "–"; // no callback URL, or not tried yet
    return delivered ? "delivered" : "not delivered";
  }

  function renderDetails(call) {
    const rows = [
      ["Function", el("a", {href: functionPage(call.function, call.namespace)}, call.function)],
      ["Namespace", call.namespace],
      ["Attempts", call.attempts],
      ["Accepted", when(call.acceptedAt)],
      ["Started", when(call.startedAt)],
      ["Finished", when(call.finishedAt)],
      ["Status", call.statusCode ?? "–"],
      ["Duration", duration(call.durationSeconds)],
      ["Error", call.error || "–"],
      ["Callback", callback(call.callbackDelivered)],
    ];
    clear($("details")).append(...rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    $("state").className = `badge ${call.state}`;
    $("state").textContent = call.state;
    $("cancel").disabled = !CANCELLABLE.includes(call.state);
    $("replay").disabled = !REPLAYABLE.includes(call.state);
  }

  // The function's final answer: a body that is not UTF-8 comes as base64, and is shown so.
  function renderResult(result) {
    $("no-result").hidden = Boolean(result);
    $("result").hidden = !result;
    if (!result) return;
    $("result-status").textContent = result.statusCode;
    $("result-headers").textContent = Object.entries(result.headers).map(([key, value]) => `${key}: ${value}`).join("\n");
    const notes = [
      result.bodyBase64 !== undefined && "The body is not UTF-8 text: it is shown in base64.",
      result.truncated && "Truncated: the gateway keeps only the first async_result_max_bytes of an answer.",
    ];
    showMessage($("result-note"), notes.filter(Boolean).join(" "));
    $("result-body").textContent = result.bodyBase64 ?? result.body;
  }

  function renderHistory(history) {
    clear(document.querySelector("#history tbody")).append(...history.map((run, index) => el("tr", {},
      el("td", {class: "num"}, index + 1),
      el("td", {}, el("span", {class: `badge ${run.state}`}, run.state)),
      el("td", {class: "num"}, run.attempts),
      el("td", {}, when(run.startedAt)),
      el("td", {}, when(run.finishedAt)),
      el("td", {class: "num"}, run.statusCode ?? "–"),
      el("td", {}, run.error || "–"))));
    $("no-history").hidden = history.length > 0;
  }

  function render(call) {
    renderDetails(call);
    renderResult(call.result);
    renderHistory(call.history);
  }

  let asked = 0; // requests for the record so far, so that an older answer never hides a newer one

  async function load(method, path) {
    const mine = ++asked;
    const call = await json(method, path);
    if (mine === asked) render(call);
  }

  async function refresh() {
    try {
      await load("GET", recordPath);
      showMessage($("error"), "");
    } catch (error) {
      showMessage($("error"), error.message);
    }
  }

  // Both answer 202 with the record as it is now, or a sentence saying why not (409: the call is
  // running, or has just changed state; the page then shows where it stands).
  async function change(method, path, done) {
    try {
      await load(method, path);
      $("action-result").textContent = done;
    } catch (error) {
      $("action-result").textContent = error.message;
      refresh();
    }
  }

  $("cancel").addEventListener("click", () => change("DELETE", `/async-function/${segment}`, "Cancelled: it will not run."));
  $("replay").addEventListener("click", () => change("POST", `${recordPath}/retry`, "Replayed: it is queued again."));
  refresh();
  setInterval(refresh, 5000);
})();
