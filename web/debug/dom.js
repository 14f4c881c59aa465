// Small DOM helpers shared by the console's modules. Every value from the server reaches the DOM
// as text (textContent, attributes), never as markup.

export const $ = (id) => document.getElementById(id);

/** `el('td', {class: 'seq'}, '12')`: attributes, `text`, `on<event>` listeners, children. */
export function el(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** The same for SVG elements (charts). */
export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const show = (node, visible) => void (node.hidden = !visible);

/** UTC time of day with milliseconds, as the event table shows it. */
export const time = (ms) => (typeof ms === 'number' ? new Date(ms).toISOString().slice(11, 23) : '');
export const isoTime = (ms) => (typeof ms === 'number' ? new Date(ms).toISOString() : '');
/** UTC time of day to the second. */
export const clock = (ms) => (typeof ms === 'number' ? new Date(ms).toISOString().slice(11, 19) : '—');

/** `3 s ago`, `in 57 s`, `2 min ago`: how far a moment is from now. */
export function relative(ms, now = Date.now()) {
  if (typeof ms !== 'number') return '';
  const seconds = Math.round((ms - now) / 1000);
  const size = Math.abs(seconds);
  const amount = size < 120 ? `${size} s` : size < 7200 ? `${Math.round(size / 60)} min` : `${Math.round(size / 3600)} h`;
  return seconds < 0 ? `${amount} ago` : seconds > 0 ? `in ${amount}` : 'now';
}

/** A route of the console: `#service/n1/echo` and the like, each part encoded. */
export const route = (...parts) => '#' + parts.map((p) => encodeURIComponent(p)).join('/');

/** The error line an action or a read shows: the code (errno or wire code) and the reason. */
export const reason = (error) => `${error.code ?? 'error'}: ${error.message ?? String(error)}`;

/** Saves `blob` as a download named `name`. */
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = el('a', { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later, not at once: the download may still be reading the blob.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
