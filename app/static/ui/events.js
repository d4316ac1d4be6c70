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

  function show(event) {
    const time = event.time || event.timestamp;
    const what = event.type || event.action || "event";
    const subject = [event.function, event.instance && `replica ${String(event.instance).slice(0, 12)}`].filter(Boolean).join(" ");
    const rest = Object.entries(event)
      .filter(([key]) => !["time", "timestamp", "type", "action", "function", "instance", "namespace"].includes(key))
      .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`).join(" ");
    list.prepend(el("li", {},
      el("time", {datetime: time || ""}, time ? new Date(time).toLocaleTimeString() : ""), " ",
      el("strong", {}, what), " ", subject, rest ? el("span", {class: "hint"}, ` ${rest}`) : null));
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
          try {
            show(JSON.parse(data.join("\n")));
          } catch {
            show({type: "message", text: data.join("\n")});
          }
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
