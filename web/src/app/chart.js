// Charts of a signal over time (uPlot): the bucket averages as a line, the maxima as dots.
import uPlot from "uplot";

const charts = new WeakMap();

function width(el) {
  return Math.max(260, Math.floor(el.getBoundingClientRect().width));
}

// drawChart draws xs (unix seconds) against avg and max into el, replacing what it drew before.
export function drawChart(el, xs, avg, max, title, unit, range) {
  const old = charts.get(el);
  if (old) old.destroy();
  const opts = {
    width: width(el),
    height: 260,
    scales: { x: { time: true, range: () => range } },
    legend: { live: true },
    axes: [{ stroke: "#333", grid: { stroke: "#e3e3e3" } }, { stroke: "#333", grid: { stroke: "#e3e3e3" }, label: unit || "", size: 60 }],
    series: [
      {},
      { label: title + " (average)", stroke: "#0b5cad", width: 2, spanGaps: false, points: { show: xs.length < 60 } },
      { label: "maximum", stroke: "#b3261e", width: 0, points: { show: true, size: 4, fill: "#b3261e" }, paths: () => null },
    ],
  };
  const u = new uPlot(opts, [xs, avg, max], el);
  charts.set(el, u);
  el.setAttribute("aria-label", title + ": " + xs.length + " points");
  if (!el.dataset.resize) {
    el.dataset.resize = "1";
    new ResizeObserver(() => { const c = charts.get(el); if (c) c.setSize({ width: width(el), height: 260 }); }).observe(el);
  }
}
