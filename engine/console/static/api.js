/**
 * The console's one way to the REST API (/api/v1): same-origin requests carrying the session cookie,
 * the CSRF token on state-changing calls, API errors shown in the error banner (their JSON "error"
 * text), and a 401 (no session, or it expired) handed to the shell, which goes back to #/login.
 */

import { showError } from './banner.js';
import { t } from './i18n.js';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
let csrfToken = null;
let unauthorized = () => {};

/** A refused or failed call: `status` is the HTTP status (0: the server could not be reached). */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/** The session's CSRF token, sent as X-CSRF-Token on POST/PUT/PATCH/DELETE. */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

/** What to do when a call answers 401 (the shell ends the session and shows the login page). */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** "?a=1&b=2" from an object or URLSearchParams, leaving out empty values; "" when nothing is left. */
export function queryString(params) {
  if (!params) return '';
  const out = new URLSearchParams();
  const entries = params instanceof URLSearchParams ? params.entries() : Object.entries(params);
  for (const [name, value] of entries) {
    if (value !== null && value !== undefined && String(value) !== '') out.set(name, String(value));
  }
  const text = out.toString();
  return text ? `?${text}` : '';
}

async function readBody(response) {
  const type = response.headers.get('Content-Type') || '';
  try {
    return type.includes('json') ? await response.json() : await response.text();
  } catch {
    return null;
  }
}

function describe(method, path, response, body) {
  if (body && typeof body === 'object' && typeof body.error === 'string') {
    let text = body.error;
    if (Array.isArray(body.required_roles) && body.required_roles.length) {
      text += ` — ${t('error.roles', { roles: body.required_roles.join(', ') })}`;
    }
    return `${text} (HTTP ${response.status})`;
  }
  return t('error.http', {
    status: `${response.status} ${response.statusText}`.trim(),
    what: `${method} ${path}`,
  });
}

/**
 * Calls the API; resolves to the parsed JSON body. On an error the banner shows it (unless `quiet`)
 * and the returned promise rejects with an ApiError.
 */
export async function request(method, path, { params, body, quiet = false } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (STATE_CHANGING.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(path + queryString(params), init);
  } catch {
    const error = new ApiError(0, t('error.network', { what: `${method} ${path}` }), null);
    if (!quiet) showError(error.message);
    throw error;
  }
  const data = await readBody(response);
  if (response.ok) return data;
  const error = new ApiError(response.status, describe(method, path, response, data), data);
  if (response.status === 401 && !quiet) {
    unauthorized(); // the login page says the session ended; no banner
  } else if (!quiet) {
    showError(error.message);
  }
  throw error;
}

export const get = (path, params, options = {}) => request('GET', path, { ...options, params });
export const post = (path, body, options = {}) => request('POST', path, { ...options, body });
