// Demo and test OpenID provider of Continuum Hub.
//
// A certified OpenID provider (npm oidc-provider) configured like a research-and-education AAI
// proxy (EGI Check-in style): authorization code flow with PKCE, opaque pairwise-looking `sub`,
// AARC-G069 `eduperson_entitlement` values, refresh tokens for every client allowed the
// refresh_token grant.  It has its own password login page and grants consent automatically (the
// hub is a first-party client of the proxy).
//
// Usage: node images/idp/server.mjs CONFIG.json
// CONFIG.json (mode 0600, written by continuum_federation.idp.OpenIDProvider) holds issuer,
// host, port, state_dir, clients, users (optionally with voperson_id), ttl and display_name
// (the name on its pages; the demo runs two providers).  Keys are kept in state_dir; everything
// else (sessions, grants, tokens) lives in memory and is gone after a restart.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import Provider, { errors } from 'oidc-provider';

const DAY = 24 * 60 * 60;
const TTL_DEFAULTS = {
  AccessToken: 3600,
  AuthorizationCode: 60,
  IdToken: 3600,
  RefreshToken: 14 * DAY,
  Grant: 14 * DAY,
  Session: 14 * DAY,
  Interaction: 3600,
};
const FORM_LIMIT = 16 * 1024;
// The provider's name on its pages; the demo runs two, so the configuration may name it.
let PROVIDER_NAME = 'Continuum demo identity provider';

function log(...args) {
  console.log(new Date().toISOString(), ...args);
}

function fail(message) {
  console.error(`idp: ${message}`);
  process.exit(2);
}

function escapeHtml(value) {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

// ---------------------------------------------------------------------------------------------
// configuration

function loadConfig(file) {
  let config;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read configuration ${file}: ${err.message}`);
  }
  for (const key of ['issuer', 'port', 'state_dir', 'clients', 'users']) {
    if (config[key] === undefined) fail(`configuration lacks "${key}"`);
  }
  config.host ??= '127.0.0.1';
  // The provider has test passwords and no TLS: it must never be reachable from elsewhere.
  if (!/^127\.\d+\.\d+\.\d+$/.test(config.host) && config.host !== '::1') {
    fail(`host must be a loopback address, not ${config.host}`);
  }
  if (!Number.isInteger(config.port) || config.port < 1 || config.port > 65535) {
    fail('port must be an integer between 1 and 65535');
  }
  const ttl = { ...TTL_DEFAULTS };
  for (const [key, value] of Object.entries(config.ttl ?? {})) {
    if (!(key in TTL_DEFAULTS)) fail(`unknown ttl "${key}"`);
    if (!Number.isInteger(value) || value <= 0) fail(`ttl.${key} must be a positive integer`);
    ttl[key] = value;
  }
  // A refresh token dies with its grant, so the grant must live at least as long.
  if (config.ttl?.Grant === undefined) ttl.Grant = Math.max(ttl.Grant, ttl.RefreshToken);
  config.ttl = ttl;
  if (!Array.isArray(config.users) || !Array.isArray(config.clients)) {
    fail('"users" and "clients" must be lists');
  }
  if (config.display_name !== undefined) {
    if (typeof config.display_name !== 'string' || !config.display_name) fail('display_name must be a string');
    PROVIDER_NAME = config.display_name;
  }
  return config;
}

// `sub` is stable per (issuer, username) but reveals neither, like an AAI proxy's identifier.
function subjectFor(issuer, username) {
  return crypto.createHash('sha256').update(`${issuer}|${username}`).digest('hex').slice(0, 40);
}

function buildAccounts(issuer, users) {
  const byUsername = new Map();
  const bySub = new Map();
  for (const user of users) {
    const { username, password } = user;
    if (typeof username !== 'string' || !username) fail('every user needs a username');
    if (typeof password !== 'string' || !password) fail(`user ${username} needs a password`);
    if (byUsername.has(username)) fail(`duplicate user ${username}`);
    const entitlements = user.entitlements ?? [];
    if (!Array.isArray(entitlements) || entitlements.some((e) => typeof e !== 'string')) {
      fail(`entitlements of ${username} must be a list of strings`);
    }
    // voperson_id (REFEDS/AARC): the person's identifier across the federation's proxies
    if (user.voperson_id !== undefined && typeof user.voperson_id !== 'string') {
      fail(`voperson_id of ${username} must be a string`);
    }
    const name = user.name ?? username;
    const [given, ...family] = name.split(' ');
    const account = {
      username,
      sub: subjectFor(issuer, username),
      passwordDigest: crypto.createHash('sha256').update(password).digest(),
      claims: {
        name,
        preferred_username: username,
        given_name: user.given_name ?? given,
        family_name: user.family_name ?? (family.join(' ') || undefined),
        email: user.email,
        email_verified: user.email ? (user.email_verified ?? true) : undefined,
        // AAI proxies leave the claim out rather than send an empty list.
        eduperson_entitlement: entitlements.length ? [...entitlements] : undefined,
        voperson_id: user.voperson_id,
      },
    };
    byUsername.set(username, account);
    bySub.set(account.sub, account);
  }
  return { byUsername, bySub };
}

// Compares digests so that neither the length nor the existence of the user leaks through timing.
const UNKNOWN_USER_DIGEST = crypto.randomBytes(32);
function checkPassword(account, password) {
  const given = crypto.createHash('sha256').update(password).digest();
  const same = crypto.timingSafeEqual(account?.passwordDigest ?? UNKNOWN_USER_DIGEST, given);
  return same && account !== undefined;
}

// ---------------------------------------------------------------------------------------------
// persistent keys

function writePrivateJson(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function readPrivateJson(file) {
  if (!fs.existsSync(file)) return undefined;
  fs.chmodSync(file, 0o600);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

async function signingKey(alg) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, modulusLength: 2048 });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg, use: 'sig' };
}

async function loadOrCreateKeys(stateDir) {
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const jwksFile = path.join(stateDir, 'jwks.json');
  let jwks = readPrivateJson(jwksFile);
  if (!jwks) {
    // RS256 first: it is what clients get unless they register another algorithm.
    jwks = { keys: [await signingKey('RS256'), await signingKey('ES256')] };
    writePrivateJson(jwksFile, jwks);
    log(`generated signing keys in ${jwksFile}`);
  }
  if (!Array.isArray(jwks.keys) || !jwks.keys.some((k) => k.kty === 'RSA' && k.d)) {
    fail(`${jwksFile} holds no private RSA key`);
  }
  const cookieFile = path.join(stateDir, 'cookie-keys.json');
  let cookieKeys = readPrivateJson(cookieFile);
  if (!cookieKeys) {
    cookieKeys = [crypto.randomBytes(32).toString('base64url')];
    writePrivateJson(cookieFile, cookieKeys);
  }
  return { jwks, cookieKeys };
}

// ---------------------------------------------------------------------------------------------
// pages

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f3f5f8; color: #1d2330; margin: 0; }
  main { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem;
         border-radius: 8px; box-shadow: 0 2px 8px rgba(0, 0, 0, .12); }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  p.sub { color: #5a6273; margin: 0 0 1.5rem; font-size: .9rem; }
  label { display: block; font-weight: 600; margin: 1rem 0 .3rem; }
  input { width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem;
          border: 1px solid #b8bfcc; border-radius: 4px; }
  button { margin-top: 1.5rem; width: 100%; padding: .65rem; font-size: 1rem; border: 0;
           border-radius: 4px; background: #2457c5; color: #fff; cursor: pointer; }
  button:hover { background: #1b449c; }
  .error { background: #fdecec; color: #9b1c1c; border: 1px solid #f5b5b5; padding: .6rem;
           border-radius: 4px; }
  .cancel { display: block; text-align: center; margin-top: 1rem; color: #5a6273; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function loginPage({ uid, clientName, username, error }) {
  const alert = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : '';
  const action = `/interaction/${encodeURIComponent(uid)}`;
  return page(`Sign in – ${PROVIDER_NAME}`, `<h1>${escapeHtml(PROVIDER_NAME)}</h1>
<p class="sub">Sign in to continue to ${escapeHtml(clientName)}.</p>
${alert}<form method="post" action="${escapeHtml(action)}" autocomplete="off">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" value="${escapeHtml(username)}"
         autocapitalize="none" spellcheck="false" required autofocus>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
<a class="cancel" href="${escapeHtml(`${action}/abort`)}">Cancel</a>`);
}

function messagePage(title, message) {
  return page(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}

function sendHtml(ctx, status, html) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = html;
}

// No inline scripts, no foreign resources, no framing.  (form-action is left out on purpose:
// browsers apply it to the redirect chain back to the client, which lives on another origin.)
function securityHeaders(ctx) {
  ctx.set('cache-control', 'no-store');
  ctx.set('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'");
  ctx.set('x-frame-options', 'DENY');
  ctx.set('x-content-type-options', 'nosniff');
  ctx.set('referrer-policy', 'no-referrer');
}

async function readForm(ctx) {
  const type = (ctx.get('content-type') || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') ctx.throw(415, 'form expected');
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > FORM_LIMIT) ctx.throw(413, 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// ---------------------------------------------------------------------------------------------
// interactions: password login, automatic consent

function interactionRoutes(provider, accounts) {
  const route = /^\/interaction\/([A-Za-z0-9_-]+)(\/abort)?$/;

  async function finish(ctx, result, merge) {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: merge,
    });
    ctx.redirect(returnTo);
    ctx.status = 303;
  }

  // The hub is a first-party client of the proxy: grant whatever it asked for, like the
  // proxy's consent screen that users have already accepted once.
  async function autoConsent(ctx, interaction) {
    const { prompt: { details }, params, session } = interaction;
    let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
    const existing = grant !== undefined;
    grant ??= new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    await finish(ctx, { consent: existing ? {} : { grantId } }, true);
  }

  async function clientName(clientId) {
    const client = await provider.Client.find(clientId);
    return client?.clientName || clientId;
  }

  return async function interactions(ctx, next) {
    const match = route.exec(ctx.path);
    if (!match) return next();
    securityHeaders(ctx);
    const [, uid, abort] = match;
    let interaction;
    try {
      interaction = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      if (!(err instanceof errors.SessionNotFound)) throw err;
      return sendHtml(ctx, 400, messagePage('Sign-in expired', 'This sign-in request has expired or was already completed. Go back to the application and start again.'));
    }
    // The cookie names the interaction; a URL naming another one is stale or forged.
    if (interaction.uid !== uid) {
      return sendHtml(ctx, 400, messagePage('Sign-in expired', 'This sign-in request does not match your browser session. Go back to the application and start again.'));
    }
    const { prompt, params } = interaction;

    if (abort) {
      if (ctx.method !== 'GET') ctx.throw(405);
      return finish(ctx, { error: 'access_denied', error_description: 'End-User aborted the sign-in' }, false);
    }
    if (prompt.name === 'consent') {
      if (ctx.method !== 'GET') ctx.throw(405);
      return autoConsent(ctx, interaction);
    }
    if (prompt.name !== 'login') {
      return sendHtml(ctx, 400, messagePage('Unsupported request', `Prompt ${prompt.name} is not supported.`));
    }

    const name = await clientName(params.client_id);
    if (ctx.method === 'GET') {
      return sendHtml(ctx, 200, loginPage({ uid, clientName: name, username: params.login_hint }));
    }
    if (ctx.method !== 'POST') ctx.throw(405);

    const form = await readForm(ctx);
    const username = form.get('username') ?? '';
    const account = accounts.byUsername.get(username);
    if (!checkPassword(account, form.get('password') ?? '')) {
      log(`login failed (client ${params.client_id})`);
      return sendHtml(ctx, 401, loginPage({
        uid, clientName: name, username, error: 'Invalid username or password',
      }));
    }
    log(`login of ${account.username} (client ${params.client_id})`);
    return finish(ctx, { login: { accountId: account.sub, amr: ['pwd'] } }, false);
  };
}

// ---------------------------------------------------------------------------------------------
// provider

async function main() {
  const file = process.argv[2];
  if (!file) fail('usage: node server.mjs CONFIG.json');
  const config = loadConfig(file);
  const accounts = buildAccounts(config.issuer, config.users);
  const { jwks, cookieKeys } = await loadOrCreateKeys(config.state_dir);

  const provider = new Provider(config.issuer, {
    clients: config.clients,
    jwks,
    cookies: { keys: cookieKeys },
    // The default tolerance of 15 s would hide expiry from the tests of token lifetimes.
    clockTolerance: 0,
    responseTypes: ['code'],
    pkce: { required: () => true },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'eduperson_entitlement', 'voperson_id'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
      eduperson_entitlement: ['eduperson_entitlement'],
      voperson_id: ['voperson_id'],
    },
    async findAccount(ctx, sub) {
      const account = accounts.bySub.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account.claims }) };
    },
    // AAI proxies hand out refresh tokens to every client registered for them, with or without
    // offline_access, which oidc-provider drops from requests without prompt=consent.
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    // Such tokens outlive the proxy's browser session, as the refresh token does.
    async expiresWithSession(ctx, code) {
      return !ctx.oidc.client.grantTypeAllowed('refresh_token') && !code.scopes.has('offline_access');
    },
    // Public clients must rotate (their tokens are bearer secrets in a browser); confidential
    // ones authenticate every refresh, and rotating on every use would make two concurrent
    // refreshes by the hub look like token theft and revoke the grant.  So they rotate only
    // late in a token's life, and never beyond a year of total lifetime.
    rotateRefreshToken(ctx) {
      const { RefreshToken: token, Client: client } = ctx.oidc.entities;
      if (token.totalLifetime() >= 365 * DAY) return false;
      if (client.clientAuthMethod === 'none') return true;
      return token.ttlPercentagePassed() >= 70;
    },
    ttl: config.ttl,
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: { enabled: false },
      introspection: {
        enabled: true,
        // Confidential clients act as resource servers of the federation; public ones may
        // only look at their own tokens.
        async allowedPolicy(ctx, client, token) {
          return client.clientAuthMethod !== 'none' || token.clientId === client.clientId;
        },
      },
      revocation: {
        enabled: true,
        async allowedPolicy(ctx, client, token) {
          return token.clientId === client.clientId;
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page(`Sign out – ${PROVIDER_NAME}`, `${form}
<h1>Sign out</h1>
<p>Do you want to sign out from the ${escapeHtml(PROVIDER_NAME)}?</p>
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm">Stay signed in</button>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = messagePage('Signed out', `You have been signed out of the ${PROVIDER_NAME}.`);
        },
      },
    },
    clientBasedCORS: () => false,
    async renderError(ctx, out) {
      securityHeaders(ctx);
      ctx.type = 'html';
      ctx.body = messagePage('Sign-in failed', [out.error, out.error_description].filter(Boolean).join(': '));
    },
  });

  for (const event of [
    'authorization.error', 'grant.error', 'userinfo.error', 'introspection.error',
    'revocation.error', 'end_session.error', 'server_error',
  ]) {
    provider.on(event, (ctx, err) => {
      // Error objects carry codes and descriptions, never token values.
      log(`${event}: ${err.error ?? err.name}: ${err.error_detail ?? err.error_description ?? err.message}`);
    });
  }
  provider.use(interactionRoutes(provider, accounts));

  const server = provider.listen(config.port, config.host);
  server.on('error', (err) => {
    console.error(`idp: cannot listen on ${config.host}:${config.port}: ${err.message}`);
    process.exit(1);
  });
  server.on('listening', () => log(`listening on ${config.host}:${config.port}, issuer ${config.issuer}`));

  const stop = (signal) => {
    log(`${signal}: stopping`);
    server.close(() => process.exit(0));
    // Keep-alive connections of test clients would otherwise hold close() open.
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  // --- SIGHUP: re-read the users (added by TOK, living tokens) ---
  // Claims (entitlements) change for the next userinfo answer; sessions and grants stay.  The
  // tests use it to take an entitlement away.  An unreadable file keeps the users unchanged.
  process.on('SIGHUP', () => {
    let users;
    try {
      users = JSON.parse(fs.readFileSync(file, 'utf8')).users;
      if (!Array.isArray(users)) throw new Error('"users" is not a list');
    } catch (err) {
      log(`SIGHUP: users unchanged, cannot re-read ${file}: ${err.message}`);
      return;
    }
    const fresh = buildAccounts(config.issuer, users);
    for (const key of ['byUsername', 'bySub']) {
      accounts[key].clear();
      for (const [id, account] of fresh[key]) accounts[key].set(id, account);
    }
    log(`SIGHUP: re-read ${accounts.byUsername.size} users`);
  });
  // --- end of SIGHUP ---
}

main().catch((err) => {
  console.error('idp: failed to start:', err);
  process.exit(1);
});
