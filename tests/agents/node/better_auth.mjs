// A real Better Auth (jwt() + @better-auth/mcp) issuing an MCP access token headlessly.
//
// node better_auth.mjs <port> <mcp resource URL> <sqlite file>
// Serves Better Auth on 127.0.0.1:<port>, then does what a person and an MCP
// client do: sign up, register a client (RFC 7591), authorize with the session
// cookie (PKCE, RFC 8707 resource), consent, exchange the code. Prints one JSON
// line {"issuer", "user_id", "access_token", "session_jwt", ...} and serves
// until stdin closes.
import crypto from "node:crypto";
import http from "node:http";

import { mcp } from "@better-auth/mcp";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";

const [port, resource, databaseFile] = process.argv.slice(2);
const baseURL = `http://127.0.0.1:${port}`;
const redirectUri = "http://127.0.0.1:6274/oauth/callback";

const auth = betterAuth({
  baseURL,
  secret: "better-auth-test-secret-".padEnd(48, "x"),
  database: new Database(databaseFile),
  emailAndPassword: { enabled: true },
  plugins: [
    jwt(),
    mcp({
      resource,
      scopes: ["openid", "profile", "email", "offline_access", "tasks:read", "tasks:write"],
      loginPage: "/login",
      consentPage: "/consent",
      allowDynamicClientRegistration: true,
      allowUnauthenticatedClientRegistration: true,
    }),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();
const server = http.createServer(toNodeHandler(auth));
await new Promise((resolve) => server.listen(Number(port), "127.0.0.1", resolve));

async function call(path, { method = "GET", body, form, cookie } = {}) {
  const headers = { origin: baseURL };
  if (cookie) headers.cookie = cookie;
  let payload;
  if (body) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  } else if (form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    payload = new URLSearchParams(form).toString();
  }
  const response = await fetch(new URL(path, baseURL), {
    method,
    headers,
    body: payload,
    redirect: "manual",
  });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  if (response.status >= 400) {
    throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 500)}`);
  }
  return { response, json };
}

// A browser gets a 302; a fetch (it sends Origin) gets {"redirect": true, "url": ...}.
function redirectTarget({ response, json }) {
  return response.headers.get("location") ?? json?.url;
}

// 1. A person signs up (the session cookie is theirs).
const signUp = await call("/api/auth/sign-up/email", {
  method: "POST",
  body: { email: "agent.user@example.com", password: "a long enough password", name: "Agent User" },
});
const cookie = signUp.response.headers
  .getSetCookie()
  .map((line) => line.split(";")[0])
  .join("; ");
const userId = signUp.json.user.id;

// 2. The MCP client registers itself (a public client, PKCE).
const client = (
  await call("/api/auth/oauth2/register", {
    method: "POST",
    body: {
      client_name: "taskapi test agent",
      application_type: "native", // a desktop agent: loopback redirects are for native apps
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      scope: "openid tasks:read tasks:write",
    },
  })
).json;

// 3. It sends the person to authorize, for this resource, with PKCE.
const verifier = crypto.randomBytes(32).toString("base64url");
const challenge = crypto.createHash("sha256").update(verifier).digest("base64url");
const authorize = new URLSearchParams({
  response_type: "code",
  client_id: client.client_id,
  redirect_uri: redirectUri,
  scope: "openid tasks:read tasks:write",
  state: "state-1",
  code_challenge: challenge,
  code_challenge_method: "S256",
  resource,
});
const redirected = await call(`/api/auth/oauth2/authorize?${authorize}`, { cookie });
let location = new URL(redirectTarget(redirected), baseURL);

// 4. The consent page: the person accepts.
if (location.pathname === "/consent") {
  const consent = await call("/api/auth/oauth2/consent", {
    method: "POST",
    cookie,
    body: { accept: true, oauth_query: location.search.slice(1) },
  });
  location = new URL(redirectTarget(consent), baseURL);
}
const code = location.searchParams.get("code");
if (!code) throw new Error(`no code in ${location}`);

// 5. The client exchanges the code for the access token.
const tokens = (
  await call("/api/auth/oauth2/token", {
    method: "POST",
    form: {
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri,
      client_id: client.client_id,
      code_verifier: verifier,
      resource,
    },
  })
).json;

// The jwt() plugin's own token for the session (what a frontend sends the REST API).
const sessionJwt = (await call("/api/auth/token", { cookie })).json.token;

console.log(
  JSON.stringify({
    issuer: `${baseURL}/api/auth`,
    session_jwt: sessionJwt,
    user_id: userId,
    client_id: client.client_id,
    access_token: tokens.access_token,
    scope: tokens.scope,
  }),
);
process.stdin.resume();
process.stdin.on("end", () => server.close(() => process.exit(0)));
