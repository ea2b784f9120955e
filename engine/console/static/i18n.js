/**
 * The console's words in English and Chinese (Simplified). The dictionaries are i18n/en.json and
 * i18n/zh.json (the same keys; a test checks it). The language is the one chosen with the language
 * button (kept in localStorage), else the browser's (zh... -> Chinese), else English. A plugin's
 * section brings its own en.json and zh.json (keys starting with its id), merged in at start.
 */

export const LANGUAGES = ['en', 'zh'];
const STORAGE_KEY = 'hie.lang';
const HTML_LANG = { en: 'en', zh: 'zh-CN' };
const dictionaries = { en: {}, zh: {} };
let current = 'en';

function stored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: the browser's language then
  }
}

function preferred() {
  const chosen = stored();
  if (LANGUAGES.includes(chosen)) return chosen;
  const browser = (navigator.language || '').toLowerCase();
  return browser.startsWith('zh') ? 'zh' : 'en';
}

async function dictionary(url) {
  const response = await fetch(url, { cache: 'no-cache' });
  if (!response.ok) throw new Error(`cannot load the dictionary ${url.pathname}: HTTP ${response.status}`);
  return response.json();
}

/**
 * Loads both dictionaries, and those of the sections in `extra` (folders such as './sections/empi/',
 * relative to this module), and applies the preferred language; before anything is drawn.
 */
export async function loadDictionaries(extra = []) {
  await Promise.all(LANGUAGES.map(async (lang) => {
    const own = dictionary(new URL(`./i18n/${lang}.json`, import.meta.url));
    const added = extra.map((folder) => dictionary(new URL(`${folder}${lang}.json`, import.meta.url)));
    const [base, ...more] = await Promise.all([own, ...added]);
    dictionaries[lang] = Object.assign({}, ...more, base);
  }));
  setLanguage(preferred(), { remember: false });
}

/** The language in use: 'en' or 'zh'. */
export function language() {
  return current;
}

/** The BCP 47 tag of the language in use (for <html lang> and date formatting). */
export function locale() {
  return HTML_LANG[current];
}

/** Switches the language (and remembers the choice unless told not to). */
export function setLanguage(lang, { remember = true } = {}) {
  current = LANGUAGES.includes(lang) ? lang : 'en';
  document.documentElement.lang = HTML_LANG[current];
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, current);
    } catch {
      // not kept across reloads; the page still switches
    }
  }
}

/** Whether `key` is in the dictionaries. */
export function has(key) {
  return key in dictionaries[current] || key in dictionaries.en;
}

/** The text of `key` in the current language, with {name} placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const template = dictionaries[current][key] ?? dictionaries.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
