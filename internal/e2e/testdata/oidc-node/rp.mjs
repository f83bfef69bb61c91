// A relying party built on openid-client, a certified OpenID Connect
// client we did not write, to check that our OpenID provider works with it.
//
//   OIDC_CLIENT_SECRET=… node rp.mjs code ISSUER CLIENT_ID REDIRECT_URI AUTH
//   OIDC_CLIENT_SECRET=… node rp.mjs ciba ISSUER CLIENT_ID LOGIN_HINT BINDING_MESSAGE AUTH
//
// AUTH is client_secret_basic or client_secret_post. The secret comes from
// the environment so that it does not show in process listings.
//
// The program talks line-delimited JSON. code prints
// {"authorization_url": …}, reads {"callback_url": …} (where the browser
// was sent back to) on stdin, exchanges the code and prints
// {"claims": …, "userinfo": …}. ciba prints the backchannel authentication
// response, polls the token endpoint and prints {"claims": …, "userinfo": …}.
// On any error it prints {"error": …} with what the library reported on
// stderr and exits with 1.

import * as readline from 'node:readline';
import * as client from 'openid-client';

const SCOPE = 'openid profile phone national_id';

function print(v) {
  process.stdout.write(JSON.stringify(v) + '\n');
}

function clientAuth(name, secret) {
  switch (name) {
    case 'client_secret_basic':
      return client.ClientSecretBasic(secret);
    case 'client_secret_post':
      return client.ClientSecretPost(secret);
    default:
      throw new Error(`unknown client authentication ${JSON.stringify(name)}`);
  }
}

async function configure(issuer, clientId, auth) {
  const secret = process.env.OIDC_CLIENT_SECRET ?? '';
  // The metadata pins ES256 so that a token signed otherwise is refused
  // rather than checked against whatever discovery lists.
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    { client_secret: secret, id_token_signed_response_alg: 'ES256' },
    clientAuth(auth, secret),
    // The test issuer is plain http on loopback.
    { execute: [client.allowInsecureRequests] },
  );
  // Without this the library trusts ID tokens from the token endpoint on
  // the strength of TLS alone (OpenID Connect Core 3.1.3.7); the
  // signature against the provider's JWKS is what we want checked.
  client.enableNonRepudiationChecks(config);
  return config;
}

// readLine returns the next line of stdin, parsed as JSON.
async function readLine() {
  const rl = readline.createInterface({ input: process.stdin });
  try {
    for await (const line of rl) {
      return JSON.parse(line);
    }
  } finally {
    rl.close();
  }
  throw new Error('stdin closed before the callback URL');
}

async function codeFlow(issuer, clientId, redirectUri, auth) {
  const config = await configure(issuer, clientId, auth);
  const pkceCodeVerifier = client.randomPKCECodeVerifier();
  const expectedState = client.randomState();
  const expectedNonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  });
  print({ authorization_url: url.href });
  const { callback_url: callback } = await readLine();
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier,
    expectedState,
    expectedNonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  print({ claims, userinfo });
}

async function ciba(issuer, clientId, loginHint, bindingMessage, auth) {
  const config = await configure(issuer, clientId, auth);
  const response = await client.initiateBackchannelAuthentication(config, {
    scope: SCOPE,
    login_hint: loginHint,
    binding_message: bindingMessage,
  });
  print(response);
  const tokens = await client.pollBackchannelAuthenticationGrant(config, response);
  const claims = tokens.claims();
  if (!claims) {
    throw new Error('the token response has no ID token');
  }
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  print({ claims, userinfo });
}

async function main(argv) {
  const [mode, ...args] = argv;
  switch (mode) {
    case 'code':
      if (args.length !== 4) break;
      return codeFlow(...args);
    case 'ciba':
      if (args.length !== 5) break;
      return ciba(...args);
  }
  throw new Error('usage: rp.mjs code ISSUER CLIENT_ID REDIRECT_URI AUTH | ciba ISSUER CLIENT_ID LOGIN_HINT BINDING_MESSAGE AUTH');
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(JSON.stringify(await describe(err)) + '\n');
  process.exitCode = 1;
}

// describe turns an error of openid-client into JSON: ResponseBodyError
// carries the OAuth error of the answer, the library's own checks carry a
// code such as OAUTH_JWT_CLAIM_COMPARISON_FAILED, and a 401 answer with a
// WWW-Authenticate header is a WWWAuthenticateChallengeError whose body
// the library leaves unread, so it is read here.
async function describe(err) {
  const out = {
    error: String(err?.message ?? err),
    name: err?.name,
    code: err?.code,
    status: err?.status,
    oauth_error: err?.error,
    error_description: err?.error_description,
  };
  if (err?.code === 'OAUTH_WWW_AUTHENTICATE_CHALLENGE') {
    out.challenges = err.cause;
    out.body = await err.response?.json().catch(() => undefined);
  } else if (err?.cause instanceof Error) {
    out.cause = err.cause.message;
  }
  return out;
}
