/**
 * The console's shell: the session (restored from GET /api/v1/session on load), the top bar (nav by
 * role, user, language, logout), and the hash router that shows one page at a time.
 *
 * A page module exports create(ctx) -> {load?, render, stop?, title}: load() fetches what the page
 * shows, render(root) draws it from what was loaded (again when the language changes, without
 * fetching again), stop() ends its timers when the user leaves.
 *
 * The plugins' sections (GET /api/v1/sections: the EMPI review queue, XDS documents, CDA reports,
 * DICOM studies...) are pages of the same kind, at #/<id> and #/<id>/<more>/<parts> (ctx.params holds
 * the parts), loaded from sections/<id>/page.js the first time a user opens one.
 */

import { onUnauthorized, request, setCsrfToken } from './api.js';
import { clearErrors, showError } from './banner.js';
import { h, fill } from './dom.js';
import { language, loadDictionaries, setLanguage, t } from './i18n.js';
import { may } from './roles.js';
import * as audit from './pages/audit.js';
import * as dashboard from './pages/dashboard.js';
import * as login from './pages/login.js';
import * as message from './pages/message.js';
import * as messages from './pages/messages.js';

const SESSION_KEY = 'hie.session';
const ROUTES = [
  { pattern: /^\/login$/, page: login, open: true },
  { pattern: /^\/dashboard$/, page: dashboard, nav: 'dashboard' },
  { pattern: /^\/messages$/, page: messages, nav: 'messages' },
  { pattern: /^\/messages\/([^/]+)$/, page: message, nav: 'messages' },
  { pattern: /^\/audit$/, page: audit, nav: 'audit' },
];
const NAV = [
  { id: 'dashboard', permission: 'stats' },
  { id: 'messages', permission: 'messages' },
  { id: 'audit', permission: 'audit' },
];
let sections = []; // [{id, roles, stylesheet}] from GET /api/v1/sections

let session = null; // {username, role, csrf_token}
let current = null; // {page, loaded, nav}
let navigation = 0;
let sessionEnded = false;
let wanted = null; // where to go after logging in

// -- session --------------------------------------------------------------------------------------

function keep(who) {
  session = who ? { username: who.username, role: who.role, csrf_token: who.csrf_token || null } : null;
  setCsrfToken(session && session.csrf_token);
  try {
    if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // storage disabled: the session lives in memory only
  }
}

function storedSession() {
  try {
    const who = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return who && who.username && who.role ? who : null;
  } catch {
    return null;
  }
}

async function restoreSession() {
  try {
    keep(await request('GET', '/api/v1/session', { quiet: true }));
  } catch (exc) {
    // 401: not logged in. Anything else (an engine without GET /session): what this tab remembers;
    // the next call answering 401 still ends it.
    keep(exc.status === 401 || exc.status === 0 ? null : storedSession());
  }
}

function sessionExpired() {
  keep(null);
  sessionEnded = true;
  const { path } = parseHash();
  if (path !== '/login') {
    wanted = location.hash;
    location.hash = '#/login';
  }
}

async function logout() {
  try {
    await request('DELETE', '/api/v1/session', { quiet: true });
  } catch {
    // an ended or unknown session: logged out all the same
  }
  keep(null);
  wanted = null;
  sessionEnded = false;
  location.hash = '#/login';
}

async function loggedIn(who) {
  keep(who);
  sessionEnded = false;
  const next = wanted && wanted !== '#/login' ? wanted : '#/dashboard';
  wanted = null;
  location.hash = next;
}

// -- top bar --------------------------------------------------------------------------------------

function switchLanguage() {
  setLanguage(language() === 'zh' ? 'en' : 'zh');
  drawTopbar(current && current.nav);
  const dismiss = document.getElementById('error-dismiss');
  if (dismiss) dismiss.setAttribute('aria-label', t('common.dismiss'));
  if (current && current.loaded) {
    document.title = `${t(current.page.title)} · hie`;
    current.page.render(document.getElementById('view'));
  }
}

/** The nav entries `role` may use: the console's own, with the plugins' sections before the audit. */
function navItems(role) {
  const own = NAV.filter((item) => may(role, item.permission)).map((item) => ({ id: item.id, label: t(`nav.${item.id}`) }));
  const added = sections.filter((s) => s.roles.includes(role)).map((s) => ({ id: s.id, label: t(`${s.id}.nav`) }));
  const audit = own.findIndex((item) => item.id === 'audit');
  const at = audit < 0 ? own.length : audit;
  return [...own.slice(0, at), ...added, ...own.slice(at)];
}

function drawTopbar(active) {
  const bar = document.getElementById('topbar');
  const role = session ? session.role : null;
  fill(
    bar,
    h('a', { class: 'brand', href: session ? '#/dashboard' : '#/login' }, h('strong', {}, 'hie'), ' ', t('app.name')),
    session
      ? h('nav', { class: 'nav', 'aria-label': t('nav.label') },
        navItems(role).map((item) => h('a', {
          id: `nav-${item.id}`,
          href: `#/${item.id}`,
          class: item.id === active ? 'active' : null,
          'aria-current': item.id === active ? 'page' : null,
        }, item.label)))
      : null,
    h('span', { class: 'spacer' }),
    session
      ? h('span', { class: 'who' },
        h('span', { id: 'user-name', class: 'user-name' }, session.username),
        h('span', { id: 'user-role', class: 'user-role', title: t('nav.role') }, t(`role.${role}`)))
      : null,
    h('button', {
      id: 'lang-toggle', type: 'button', class: 'ghost', lang: language() === 'zh' ? 'en' : 'zh-CN',
      title: t('lang.title'), on: { click: switchLanguage },
    }, t('lang.toggle')),
    session ? h('button', { id: 'logout', type: 'button', class: 'ghost', on: { click: logout } }, t('nav.logout')) : null,
  );
}

// -- router ---------------------------------------------------------------------------------------

function parseHash() {
  const text = location.hash.replace(/^#/, '');
  const at = text.indexOf('?');
  const path = (at < 0 ? text : text.slice(0, at)) || '/';
  return { path, query: new URLSearchParams(at < 0 ? '' : text.slice(at + 1)) };
}

function decodeParam(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a malformed %-escape: the API will say the id is bad
  }
}

function findRoute(path) {
  const own = ROUTES.map((r) => ({ r, m: path.match(r.pattern) })).find((x) => x.m);
  if (own) return own;
  const [first, ...rest] = path.replace(/^\//, '').split('/');
  const section = sections.find((s) => s.id === first);
  if (!section) return null;
  const parts = rest.filter((part) => part !== '');
  return { r: { section: section.id, nav: section.id }, m: [path, ...parts] };
}

async function loadSections() {
  try {
    const answer = await request('GET', '/api/v1/sections', { quiet: true });
    sections = Array.isArray(answer.sections) ? answer.sections : [];
  } catch {
    sections = []; // an engine without sections: the console's own pages only
  }
}

async function route() {
  const mine = ++navigation;
  if (current && current.page.stop) current.page.stop();
  current = null;
  clearErrors();
  const { path, query } = parseHash();
  if (!session && path !== '/login') {
    if (path !== '/') wanted = location.hash;
    location.replace('#/login');
    return;
  }
  if (session && (path === '/login' || path === '/')) {
    location.replace('#/dashboard');
    return;
  }
  const found = findRoute(path);
  if (!found) {
    location.replace('#/dashboard');
    return;
  }
  const view = document.getElementById('view');
  const ctx = {
    session,
    params: found.m.slice(1).map(decodeParam),
    query,
    may: (permission) => may(session && session.role, permission),
    reload: route,
    loggedIn,
    sessionEnded,
  };
  let module = found.r.page;
  if (!module) {
    try {
      module = await import(`./sections/${found.r.section}/page.js`);
    } catch (exc) {
      if (mine === navigation) showError(`${found.r.section}: ${exc && exc.message ? exc.message : exc}`);
      return;
    }
    if (mine !== navigation) return;
  }
  const page = module.create(ctx);
  current = { page, loaded: false, nav: found.r.nav };
  document.title = `${t(page.title)} · hie`;
  drawTopbar(found.r.nav);
  fill(view, h('p', { class: 'loading' }, t('common.loading')));
  try {
    if (page.load) await page.load();
  } catch (exc) {
    if (mine !== navigation) return;
    if (!(exc && exc.name === 'ApiError')) showError(String(exc && exc.message ? exc.message : exc));
    fill(view, h('p', { class: 'muted empty' }, t('common.unavailable')));
    return;
  }
  if (mine !== navigation) {
    if (page.stop) page.stop();
    return;
  }
  current.loaded = true;
  page.render(view);
}

async function start() {
  await loadSections();
  for (const s of sections.filter((x) => x.stylesheet)) {
    document.head.append(h('link', { rel: 'stylesheet', href: `sections/${s.id}/style.css` }));
  }
  await loadDictionaries(sections.map((s) => `./sections/${s.id}/`));
  const dismiss = document.getElementById('error-dismiss');
  dismiss.setAttribute('aria-label', t('common.dismiss'));
  dismiss.addEventListener('click', clearErrors);
  onUnauthorized(sessionExpired);
  await restoreSession();
  window.addEventListener('hashchange', () => {
    route().catch((exc) => showError(String(exc)));
  });
  await route();
}

start().catch((exc) => showError(`The console could not start: ${exc && exc.message ? exc.message : exc}`));
