/** #/login: the login form (POST /api/v1/session); a refused login is said in #login-error. */

import { request } from '../api.js';
import { h, fill } from '../dom.js';
import { t } from '../i18n.js';

export function create(ctx) {
  let failure = null; // the last refusal's text, kept across a language switch

  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const button = form.querySelector('#login-submit');
    const username = form.querySelector('#login-username').value.trim();
    const password = form.querySelector('#login-password').value;
    const error = form.querySelector('#login-error');
    button.disabled = true;
    error.hidden = true;
    try {
      const who = await request('POST', '/api/v1/session', { body: { username, password }, quiet: true });
      await ctx.loggedIn(who);
    } catch (exc) {
      failure = exc.status === 401 ? { key: 'login.failed' } : { text: exc.message };
      error.textContent = failure.key ? t(failure.key) : failure.text;
      error.hidden = false;
      form.querySelector('#login-password').value = '';
      form.querySelector('#login-password').focus();
      button.disabled = false;
    }
  }

  function render(root) {
    const form = h('form', { id: 'login-form', class: 'login-form', novalidate: true, on: { submit } },
      h('h1', {}, t('login.title')),
      h('p', { class: 'muted' }, t('login.intro')),
      ctx.sessionEnded ? h('p', { class: 'notice' }, t('login.ended')) : null,
      h('label', { for: 'login-username' }, t('login.username')),
      h('input', { id: 'login-username', name: 'username', autocomplete: 'username', required: true, autofocus: true }),
      h('label', { for: 'login-password' }, t('login.password')),
      h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      h('p', { id: 'login-error', class: 'form-error', role: 'alert', hidden: !failure },
        failure ? (failure.key ? t(failure.key) : failure.text) : ''),
      h('button', { id: 'login-submit', type: 'submit', class: 'primary' }, t('login.submit')));
    fill(root, h('section', { class: 'login-page' }, form));
    form.querySelector('#login-username').focus();
  }

  return { title: 'login.title', render };
}
