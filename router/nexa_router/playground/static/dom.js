// Small DOM helpers. Text from the API or a model only ever becomes text nodes (never HTML).

/** Create an element: `el("td", {class: "time", title: "…"}, "text", childNode)`. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/** Show an error (an ApiError's message, as the API wrote it) in a role=alert box; null hides it. */
export function showError(box, error) {
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = error.display ? error.display() : String(error.message || error);
  box.hidden = false;
}

/** Seconds with a sensible number of digits. */
export function seconds(ms) {
  const s = ms / 1000;
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** An elapsed-time ticker for a long request; returns a function that stops it. */
export function ticker(onTick, everyMs = 100) {
  const started = performance.now();
  onTick(0);
  const timer = setInterval(() => onTick(performance.now() - started), everyMs);
  return () => clearInterval(timer);
}
