/**
 * Building the page without ever parsing HTML: text is always set as text (textContent or text
 * nodes) and attributes through setAttribute, so message content, search values and API error texts
 * can never become markup or script. Event handlers are passed as functions (`on: {click: fn}`),
 * never as `on...` attributes.
 */

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(node, props) {
  for (const [key, raw] of Object.entries(props || {})) {
    let value = raw;
    if (value === null || value === undefined || value === false) continue;
    if (key === 'on') {
      for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
      continue;
    }
    if (key === 'text') {
      node.textContent = String(value);
      continue;
    }
    if (/^on/i.test(key)) throw new Error(`event handler attributes are not allowed: ${key}`);
    if (key === 'class' && Array.isArray(value)) value = value.filter(Boolean).join(' ');
    if ((key === 'href' || key === 'src') && /^\s*(javascript|data|vbscript):/i.test(String(value))) {
      throw new Error(`refusing a script URL in ${key}`);
    }
    node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h('a', {href: '#/x', class: 'link'}, 'text', otherNode). */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** An SVG element, the same way (for chart.js). */
export function svg(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** Replaces every child of `node` with `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}
