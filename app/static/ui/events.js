// The live feed of what happens to functions: /system/events as Server-Sent Events, read with
// fetch so that an HTTP error shows its sentence; reconnects when the stream reaches its deadline.
"use strict";

(() => {
  const {el, api, withNamespace} = UI;
  const list = document.getElementById("events");
  const status = document.getElementById("status");
  const filter = document.getElementById("filter");
  const MAX_EVENTS = 500;
  let abort = null;

  // One event as /system/events sends it: type, time, and where they apply name, instance,
  // replicas, previousReplicas, exitCode, rollout and message.
  function show(event) {
    const details = [
      event.previousReplicas !== undefined && `from ${event.previousReplicas}`,
      event.replicas !== undefined && `${event.previousReplicas !== undefined ? "to" : "replicas"} ${event.replicas}`,
      event.exitCode !== undefined && `exit code ${event.exitCode}`,
      event.rollout && `rollout ${event.rollout}`,
      event.message,
    ].filter(Boolean).join(", ");
    list.prepend(el("li", {},
      el("time", {datetime: event.time}, new Date(event.time).toLocaleTimeString()), " ",
      el("strong", {}, event.type), " ",
      event.name ? el("a", {href: UI.functionPage(event.name)}, event.name) : null,
      event.instance ? ` replica ${event.instance.slice(0, 12)}` : "",
      details ? el("span", {class: "hint"}, ` ${details}`) : null));
    while (list.children.length > MAX_EVENTS) list.lastChild.remove();
  }

  async function connect() {
    if (abort) abort.abort();
    const mine = abort = new AbortController();
    const query = filter.value.trim() ? {function: filter.value.trim()} : {};
    try {
      const response = await api("GET", withNamespace("/system/events", query), undefined, {signal: mine.signal});
      if (!response.ok) {
        status.textContent = `No events feed: ${(await response.text()).trim() || response.status}`;
        return;
      }
      status.textContent = "Connected; new events appear at the top.";
      let data = [];
      for await (const line of UI.lines(response)) {
        if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
        else if (line === "" && data.length) {
          show(JSON.parse(data.join("\n")));
          data = [];
        }
      }
    } catch (error) {
      if (error.name === "AbortError") return;
      status.textContent = error.message;
    }
    if (mine === abort) {
      status.textContent = "Reconnecting…";
      setTimeout(connect, 1000);
    }
  }

  filter.addEventListener("change", connect);
  connect();
})();
