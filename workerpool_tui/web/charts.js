/* Small line charts on canvas for the stats cards: a baseline, a top line labelled with
 * the scale, and one or more series right-aligned in a fixed number of slots. */

function niceMax(v) {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtScale(v) {
  if (v >= 10000) return `${Math.round(v / 1000)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

/**
 * @param {HTMLCanvasElement} canvas
 * @param {{values: number[], color: string, fill: boolean}[]} series
 * @param {number} slots  samples across the full width
 * @param {{muted: string, border: string, font: string}} theme
 */
export function drawChart(canvas, series, slots, theme) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  let top = 0;
  for (const s of series) for (const v of s.values) top = Math.max(top, Number(v) || 0);
  top = niceMax(top);
  ctx.font = `10px ${theme.font || "monospace"}`;
  const label = fmtScale(top);
  const pad = { l: 0, r: Math.ceil(ctx.measureText(label).width) + 6, t: 5, b: 2 };
  const w = width - pad.l - pad.r;
  const h = height - pad.t - pad.b;
  ctx.strokeStyle = theme.border;
  ctx.lineWidth = 1;
  for (const y of [pad.t + 0.5, Math.round(pad.t + h) - 0.5]) {
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(pad.l + w, y);
    ctx.stroke();
  }
  ctx.fillStyle = theme.muted;
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  ctx.fillText(label, pad.l + w + 4, pad.t + 1);
  ctx.textBaseline = "alphabetic";
  ctx.fillText("0", pad.l + w + 4, pad.t + h);
  const step = w / Math.max(1, slots - 1);
  for (const s of series) {
    const vals = s.values;
    if (vals.length === 0) continue;
    const x0 = pad.l + (slots - vals.length) * step;
    const pt = (i) => [x0 + i * step, pad.t + h - ((Number(vals[i]) || 0) / top) * h];
    ctx.beginPath();
    vals.forEach((_, i) => {
      const [x, y] = pt(i);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = "round";
    ctx.stroke();
    if (s.fill) {
      const [xl] = pt(vals.length - 1);
      ctx.lineTo(xl, pad.t + h);
      ctx.lineTo(x0, pad.t + h);
      ctx.closePath();
      ctx.globalAlpha = 0.14;
      ctx.fillStyle = s.color;
      ctx.fill();
      ctx.globalAlpha = 1;
    }
  }
}
