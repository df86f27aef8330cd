// A signed-in browser context without going through the sign-in page: the tokens of an API
// login are put where the console keeps them (localStorage "crm2.auth", the zustand persist
// format). The sign-in page itself is covered by console.test.mjs; every other scenario
// saves its few seconds here. Each context logs in on its own: its own refresh-token family.

export async function apiLogin(base, email, password) {
  const response = await fetch(`${base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
  });
  if (!response.ok) throw new Error(`login ${email}: ${response.status}`);
  return response.json();
}

/** `browser.newContext` options that open the console already signed in as `email`. */
export async function signedInState(base, email, password) {
  const tokens = await apiLogin(base, email, password);
  const stored = {
    state: {
      tokens: {
        accessToken: tokens.access_token,
        refreshToken: tokens.refresh_token,
        expiresAt: Date.now() + tokens.expires_in * 1000,
      },
    },
    version: 0,
  };
  return {
    storageState: {
      cookies: [],
      origins: [{ origin: base, localStorage: [{ name: "crm2.auth", value: JSON.stringify(stored) }] }],
    },
    token: tokens.access_token,
  };
}
