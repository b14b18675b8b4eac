// The dashboard's bearer token, kept in the tab's sessionStorage (never in a URL): read by
// every request the page sends (util.js api(), auth.js streams), set by the login form.
export const TOKEN_KEY = 'ferry.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}
