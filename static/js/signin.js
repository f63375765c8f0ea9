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
  const input = tokenInput();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Sign in');
  const onsubmit = (e) => {
    e.preventDefault();
    trySignIn(input.value, next, { error, submit });
  };
  mount(
    view,
    h(
      'form',
      { class: 'panel signin', 'aria-labelledby': 'signin-title', onsubmit },
      h('h1', { id: 'signin-title' }, 'Sign in'),
      intro,
      h('label', { for: 'token-input' }, 'Bearer token'),
      input,
      tokenHelp(),
      error,
      submit,
    ),
  );
  input.focus();
  return null;
}

function tokenInput() {
  return h('textarea', {
    id: 'token-input',
    name: 'token',
    rows: 4,
    required: true,
    spellcheck: false,
    autocomplete: 'off',
    placeholder: 'eyJhbGciOiJIUzI1NiIs…',
    'aria-describedby': 'token-help',
  });
}

function tokenHelp() {
  return h(
    'p',
    { id: 'token-help', class: 'hint' },
    'For development, mint a token on the server machine with ',
    h('code', {}, 'ephemera token alice'),
    ' (or ',
    h('code', {}, '.venv/bin/ephemera token alice'),
    ') and paste it here. The token stays in this browser only.',
  );
}

/** Check the token with the server; signed in, go on to `next`, else say why. */
async function trySignIn(token, next, { error, submit }) {
  error.hidden = true;
  submit.disabled = true;
  try {
    await signIn(token);
    navigate(next, { replace: true });
  } catch (err) {
    error.textContent = describeError(err);
    error.hidden = false;
  } finally {
    submit.disabled = false;
  }
}
