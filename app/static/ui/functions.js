// The functions list: refreshed every 5 s; calls per second from the change of each function's
// invocation count between two refreshes.
"use strict";

(() => {
  const {el, clear, json, withNamespace, functionPage} = UI;
  const body = document.querySelector("#functions tbody");
  const search = document.getElementById("search");
  const status = document.getElementById("status");
  const empty = document.getElementById("empty");
  let functions = [];
  let previous = null; // {at, counts: Map}
  let rates = new Map();

  function state(fn) {
    if (fn.replicas === 0) return ["scaled to zero", "zero"];
    if (fn.availableReplicas > 0) return ["ready", "ready"];
    return ["not ready", "notready"];
  }

  function render() {
    const term = search.value.trim().toLowerCase();
    const shown = functions.filter((fn) => !term || fn.name.toLowerCase().includes(term) || fn.image.toLowerCase().includes(term));
    clear(body).append(...shown.map((fn) => {
      const [label, kind] = state(fn);
      const rate = rates.get(fn.name);
      return el("tr", {"data-name": fn.name},
        el("th", {scope: "row"}, el("a", {href: functionPage(fn.name)}, fn.name)),
        el("td", {class: "mono"}, fn.image),
        el("td", {}, `${fn.availableReplicas} of ${fn.replicas}`),
        el("td", {class: "num"}, fn.invocationCount),
        el("td", {class: "num"}, rate === undefined ? "–" : rate.toFixed(2)),
        el("td", {}, el("span", {class: `badge ${kind}`}, label)));
    }));
    empty.hidden = functions.length > 0;
  }

  async function refresh() {
    try {
      const list = await json("GET", withNamespace("/system/functions"));
      const at = performance.now();
      const counts = new Map(list.map((fn) => [fn.name, fn.invocationCount]));
      if (previous) {
        const seconds = (at - previous.at) / 1000;
        rates = new Map(list.filter((fn) => previous.counts.has(fn.name))
          .map((fn) => [fn.name, Math.max(0, fn.invocationCount - previous.counts.get(fn.name)) / seconds]));
      }
      previous = {at, counts};
      functions = list.sort((a, b) => a.name.localeCompare(b.name));
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      render();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  search.addEventListener("input", render);
  refresh();
  setInterval(refresh, 5000);
})();
