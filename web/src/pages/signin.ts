// Sign-in: a token checked against the API, then kept in sessionStorage for this tab only.

import { ApiError, request, setToken } from '../api';
import { h, notice, replace } from '../dom';
import { safeNext, type Route } from '../router';
import type { Page } from './page';

export function signInPage(route: Route): Page {
  const error = h('div', { id: 'signin-error' });
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'aria-describedby': 'token-help signin-error',
  });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin-form' },
    h('label', { for: 'token' }, 'Access token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'muted' },
      'A token starts with dpl_. The server prints an admin token at its first start; ',
      h('code', null, 'doppel token create --role reader'),
      ' makes one for viewing only. It is kept in this tab until you sign out or close it.',
    ),
    button,
    error,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    replace(error);
    try {
      await request('/api/v1/models', { token });
      setToken(token);
      location.hash = `#${safeNext(route.query.get('next'))}`;
    } catch (err) {
      const msg =
        err instanceof ApiError && err.status === 401
          ? 'That token is not valid (revoked, mistyped, or from another server).'
          : err instanceof Error
            ? err.message
            : String(err);
      replace(error, notice('error', msg));
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  const el = h(
    'section',
    { class: 'signin' },
    h('h1', { tabindex: '-1' }, 'Sign in to doppel'),
    route.query.get('expired') ? notice('info', 'Your token was refused; sign in again.') : null,
    form,
  );
  queueMicrotask(() => input.focus());
  return { el, title: 'Sign in', dispose() {} };
}
