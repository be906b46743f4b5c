// The operator page's charts: rates over the last minutes on a canvas, drawn by hand.

import { si } from "./util.js";

/** Seconds the charts show at most: the last five minutes. */
export const WINDOW_S = 300;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

function prepare(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const base = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (value <= m * base) return m * base;
  return 10 * base;
}

// The time shown: the last five minutes, or less (at least one) while the page has less.
function span(points, now) {
  const first = points.length ? points[0].t : now;
  return Math.min(WINDOW_S, Math.max(60, now - first));
}

function ago(seconds) {
  return seconds >= 90 ? `${Math.round(seconds / 60)} min ago` : `${Math.round(seconds)} s ago`;
}

// series: [[key, colour name, points]]: each line its own points ({t, [key]: value}), so the
// service's series and the page's own samples can share a chart.
export function chart(canvas, series) {
  const { ctx, w, h } = prepare(canvas);
  const left = 56, right = 8, top = 8, bottom = 20;
  const now = Date.now() / 1000;
  const width = span(series.flatMap(([, , points]) => points.slice(0, 1)).sort((a, b) => a.t - b.t), now);
  const t0 = now - width;
  const lines = series.map(([key, name, points]) => [key, name, points.filter((p) => p.t >= t0)]);
  const max = niceMax(Math.max(0, ...lines.flatMap(([key, , shown]) => shown.map((p) => p[key]))));
  const x = (t) => left + ((t - t0) / width) * (w - left - right);
  const y = (v) => top + (1 - v / max) * (h - top - bottom);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = css("--muted");
  ctx.strokeStyle = css("--grid");
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    ctx.beginPath();
    ctx.moveTo(left, y(v) + 0.5);
    ctx.lineTo(w - right, y(v) + 0.5);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.fillText(si(v), left - 6, y(v) + 4);
  }
  ctx.textAlign = "left";
  ctx.fillText(ago(width), left, h - 4);
  ctx.textAlign = "right";
  ctx.fillText("now", w - right, h - 4);
  for (const [key, name, shown] of lines) {
    ctx.strokeStyle = css(`--${name}`);
    ctx.lineWidth = 1.75;
    ctx.beginPath();
    shown.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.stroke();
  }
  if (!lines.some(([, , shown]) => shown.length)) {
    ctx.textAlign = "center";
    ctx.fillStyle = css("--muted");
    ctx.fillText("collecting…", (left + w) / 2, h / 2);
  }
}

export function sparkline(canvas, rates) {
  if (!canvas.isConnected) return;
  const { ctx, w, h } = prepare(canvas);
  const now = Date.now() / 1000;
  const width = span(rates, now);
  const t0 = now - width;
  const shown = rates.filter((p) => p.t >= t0);
  if (shown.length < 2) return;
  const max = Math.max(1, ...shown.map((p) => p.pps));
  ctx.strokeStyle = css("--packets");
  ctx.lineWidth = 1.25;
  ctx.beginPath();
  shown.forEach((p, i) => {
    const px = ((p.t - t0) / width) * w;
    const py = h - 2 - (p.pps / max) * (h - 4);
    if (i) ctx.lineTo(px, py); else ctx.moveTo(px, py);
  });
  ctx.stroke();
}
