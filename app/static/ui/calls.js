// The async calls of the chosen namespace, newest first, a page at a time, filtered by state and
// function and refreshed every 5 s; and replaying the dead letters of the function filtered by.
"use strict";

(() => {
  const {el, clear, json, showMessage, withNamespace, namespace, functionPage, duration, when} = UI;
  const $ = (id) => document.getElementById(id);
  const body = document.querySelector("#calls tbody");
  let after = ""; // the cursor of the page shown, "" for the newest calls
  let next = ""; // the cursor of the page after it, "" when there is none
  let asked = 0; // refreshes started, so that only the latest one's answer is shown

  function filters() {
    const query = {};
    if ($("state").value) query.state = $("state").value;
    if ($("function").value.trim()) query.function = $("function").value.trim();
    return query;
  }

  function row(call) {
    return el("tr", {"data-call": call.callId},
      el("th", {scope: "row"}, el("a", {class: "mono", href: `/ui/async/${encodeURIComponent(call.callId)}`}, call.callId)),
      el("td", {}, el("a", {href: functionPage(call.function)}, call.function)),
      el("td", {}, el("span", {class: `badge ${call.state}`}, call.state)),
      el("td", {class: "num"}, call.attempts),
      el("td", {}, when(call.acceptedAt)),
      el("td", {}, when(call.finishedAt)),
      el("td", {class: "num", title: call.error || ""}, call.statusCode ?? "–"),
      el("td", {class: "num"}, duration(call.durationSeconds)));
  }

  async function refresh() {
    const mine = ++asked;
    try {
      const page = await json("GET", withNamespace("/system/async-calls", after ? {...filters(), after} : filters()));
      // A filter that changed while this page was on its way asked for another one.
      if (mine !== asked) return;
      clear(body).append(...page.calls.map(row));
      next = page.next;
      $("empty").hidden = page.calls.length > 0;
      $("older").disabled = !next;
      $("newest").disabled = !after;
      showMessage($("error"), "");
      $("status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      if (mine === asked) showMessage($("error"), error.message);
    }
  }

  function refilter() {
    after = "";
    refresh();
  }

  // The API puts back at most a page of dead letters per request; pressing again puts back the next.
  async function replayDead() {
    const fn = $("function").value.trim();
    if (!window.confirm(`Replay the dead letters of ${fn || `every function in ${namespace}`}?`)) return;
    const query = fn ? {state: "dead", function: fn} : {state: "dead"};
    try {
      const {queued} = await json("POST", withNamespace("/system/async-calls/retry", query));
      $("replay-result").textContent = queued.length
        ? `${queued.length} dead letter${queued.length === 1 ? "" : "s"} queued again.`
        : "No dead letters to replay.";
      refresh();
    } catch (error) {
      $("replay-result").textContent = error.message;
    }
  }

  // The function names the filter may take: it matches a name exactly.
  json("GET", withNamespace("/system/functions"))
    .then((functions) => clear($("function-list")).append(...functions.map((fn) => el("option", {value: fn.name}))))
    .catch(() => {});
  $("state").addEventListener("change", refilter);
  $("function").addEventListener("change", refilter);
  $("older").addEventListener("click", () => { after = next; refresh(); });
  $("newest").addEventListener("click", refilter);
  $("replay-dead").addEventListener("click", replayDead);
  $("replay-dead").disabled = false;
  refresh();
  setInterval(refresh, 5000);
})();
