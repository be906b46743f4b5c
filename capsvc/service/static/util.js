// Small helpers of the operator page: building elements, formatting numbers and times.

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function si(value, unit = "") {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const steps = ["", "k", "M", "G", "T"];
  let i = 0;
  let v = Math.abs(value);
  while (v >= 1000 && i < steps.length - 1) {
    v /= 1000;
    i += 1;
  }
  const sign = value < 0 ? "-" : "";
  const digits = v >= 100 || i === 0 ? 0 : v >= 10 ? 1 : 2;
  let text = i === 0 && !Number.isInteger(v) ? v.toFixed(v >= 10 ? 0 : 1) : v.toFixed(digits);
  if (text.includes(".")) text = text.replace(/\.?0+$/, "");
  return `${sign}${text}${unit ? " " : ""}${steps[i]}${unit}`;
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
