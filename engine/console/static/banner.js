/** The error banner (#error-banner) every page shares: API errors and other failures, newest last. */

const MAX_LINES = 4;
const shown = [];

function draw() {
  const banner = document.getElementById('error-banner');
  const list = document.getElementById('error-lines');
  if (!banner || !list) return;
  list.replaceChildren(...shown.map((text) => {
    const item = document.createElement('li');
    item.textContent = text;
    return item;
  }));
  banner.hidden = shown.length === 0;
}

/** Shows `text` in the banner (once, however often it is reported). */
export function showError(text) {
  const line = String(text);
  if (!shown.includes(line)) shown.push(line);
  while (shown.length > MAX_LINES) shown.shift();
  draw();
}

/** Empties and hides the banner (on every navigation, and by its dismiss button). */
export function clearErrors() {
  shown.length = 0;
  draw();
}
