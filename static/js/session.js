// Who is signed in, and the server's story settings (fetched once per sign-in).

import { api, ApiError, getToken, setToken, tokenSubject } from './api.js';

// Used until /v1/stories/config answers (or if it cannot), so the composer still works.
const DEFAULT_CONFIG = {
  allowed_reactions: ['❤️', '😂', '😮', '😢', '👏', '🔥'],
  max_text: 500,
  ttl_seconds: 86400,
  max_video_seconds: 60,
  max_upload_bytes: 25 * 1024 * 1024,
  backgrounds: ['#1d9bf0', '#f91880', '#7856ff', '#ff7a00', '#00ba7c', '#0f1419'],
};

export const session = {
  user: null, // {user_id, followers, following}
  config: { ...DEFAULT_CONFIG },
};

/** Check the stored token against the server; resolves to the user or null. */
export async function restore() {
  if (!getToken()) return null;
  try {
    session.user = await api('/v1/me');
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      setToken(null);
      session.user = null;
      return null;
    }
    throw e;
  }
  await loadConfig();
  return session.user;
}

export async function loadConfig() {
  try {
    session.config = { ...DEFAULT_CONFIG, ...(await api('/v1/stories/config')) };
  } catch {
    session.config = { ...DEFAULT_CONFIG };
  }
}

/** Sign in with a pasted token: verified by calling /v1/me before it is kept. */
export async function signIn(token) {
  const cleaned = token.trim().replace(/^Bearer\s+/i, '');
  const { exp } = tokenSubject(cleaned);
  if (exp && exp * 1000 < Date.now()) {
    throw new ApiError(401, 'token_expired', 'This token has expired. Mint a new one.');
  }
  const previous = getToken();
  setToken(cleaned);
  try {
    return await restore().then((user) => {
      if (!user) throw new ApiError(401, 'invalid_token', 'The server did not accept this token.');
      return user;
    });
  } catch (e) {
    setToken(previous);
    throw e;
  }
}

export function signOut() {
  setToken(null);
  session.user = null;
}

export async function refreshMe() {
  session.user = await api('/v1/me');
  return session.user;
}
