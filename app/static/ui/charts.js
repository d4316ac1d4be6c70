// Small SVG line charts, drawn with DOM calls (no HTML strings, no library).
"use strict";

const Charts = (() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 480, HEIGHT = 160, LEFT = 48, BOTTOM = 20, TOP = 8, RIGHT = 8;
  const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2"];

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value) {
    if (value >= 100) return value.toFixed(0);
    if (value >= 1) return value.toFixed(1);
    return value.toPrecision(2);
  }

  // lines: [{name, points: [[t seconds, value or null], ...]}]; one chart with a legend and
  // a text summary (the latest value of each line) for screen readers.
  function line(title, unit, lines, start, end) {
    const figure = UI.el("figure", {class: "chart"});
    const caption = UI.el("figcaption", {}, `${title} (${unit})`);
    const values = lines.flatMap((l) => l.points.map((p) => p[1])).filter((v) => v !== null);
    const top = Math.max(1e-9, ...values) * 1.1 || 1;
    const x = (t) => LEFT + ((t - start) / Math.max(1, end - start)) * (WIDTH - LEFT - RIGHT);
    const y = (v) => HEIGHT - BOTTOM - (v / top) * (HEIGHT - BOTTOM - TOP);
    const chart = svg("svg", {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title});
    for (const fraction of [0, 0.5, 1]) {
      const v = (top / 1.1) * fraction;
      chart.append(svg("line", {x1: LEFT, x2: WIDTH - RIGHT, y1: y(v), y2: y(v), class: "grid"}));
      chart.append(svg("text", {x: LEFT - 4, y: y(v) + 4, "text-anchor": "end", class: "axis"}, values.length ? format(v) : ""));
    }
    chart.append(svg("text", {x: LEFT, y: HEIGHT - 4, class: "axis"}, new Date(start * 1000).toLocaleTimeString()));
    chart.append(svg("text", {x: WIDTH - RIGHT, y: HEIGHT - 4, "text-anchor": "end", class: "axis"}, "now"));
    const legend = UI.el("ul", {class: "legend"});
    lines.forEach((l, index) => {
      const colour = COLOURS[index % COLOURS.length];
      // A gap (null) breaks the line, so a missing sample is not drawn as a slope.
      let path = "";
      let drawing = false;
      for (const [t, v] of l.points) {
        if (v === null) { drawing = false; continue; }
        path += `${drawing ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
        drawing = true;
      }
      if (path) chart.append(svg("path", {d: path, stroke: colour, fill: "none", "stroke-width": 1.5}));
      // A few points over an hour are too short to see as a line: each is marked.
      const measured = l.points.filter((p) => p[1] !== null);
      if (measured.length < 60) {
        for (const [t, v] of measured) chart.append(svg("circle", {cx: x(t).toFixed(1), cy: y(v).toFixed(1), r: 2, fill: colour}));
      }
      const last = l.points.filter((p) => p[1] !== null).pop();
      const swatch = UI.el("span", {class: "swatch"});
      swatch.style.background = colour;
      legend.append(UI.el("li", {}, swatch, `${l.name}: ${last ? format(last[1]) : "–"}`));
    });
    if (!values.length) chart.append(svg("text", {x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "axis"}, "no data yet"));
    figure.append(caption, chart, legend);
    return figure;
  }

  return {line};
})();
