// Development sign-in: paste a bearer token minted by `ephemera token USER`.
//
// The server never mints tokens over HTTP (in production the app's own backend does);
// the token is kept in localStorage and sent as `Authorization: Bearer`.

import { describeError } from './api.js';
import { navigate } from './router.js';
import { signIn } from './session.js';
import { h, mount } from './ui.js';

export function renderSignIn(view, { next = '/', intro = null } = {}) {
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const input = h('textarea', {
    id: 'token-input',
    name: 'token',
    rows: 4,
    required: true,
    spellcheck: false,
    autocomplete: 'off',
    placeholder: 'eyJhbGciOiJIUzI1NiIs…',
    'aria-describedby': 'token-help',
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'panel signin',
      'aria-labelledby': 'signin-title',
      onsubmit: async (e) => {
        e.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        try {
          await signIn(input.value);
          navigate(next, { replace: true });
        } catch (err) {
          error.textContent = describeError(err);
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h1', { id: 'signin-title' }, 'Sign in'),
    intro,
    h('label', { for: 'token-input' }, 'Bearer token'),
    input,
    h(
      'p',
      { id: 'token-help', class: 'hint' },
      'For development, mint a token on the server machine with ',
      h('code', {}, 'ephemera token alice'),
      ' (or ',
      h('code', {}, '.venv/bin/ephemera token alice'),
      ') and paste it here. The token stays in this browser only.',
    ),
    error,
    submit,
  );
  mount(view, form);
  input.focus();
  return null;
}
