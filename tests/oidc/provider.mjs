// A real OpenID Connect provider (node-oidc-provider) for caap's end-to-end tests, on loopback only.
//
//   node provider.mjs [PORT]        (or OIDC_PORT=PORT; 0 or nothing: a free port)
//
// Clients (secrets from the environment, with test defaults):
//   OIDC_ADMIN_CLIENT_ID / OIDC_ADMIN_CLIENT_SECRET    client_credentials, may ask for scope `caap:admin`
//   OIDC_READER_CLIENT_ID / OIDC_READER_CLIENT_SECRET  client_credentials, may only ask for `caap:read`
//   OIDC_PORTAL_CLIENT_ID / OIDC_PORTAL_CLIENT_SECRET  the citizen portal: authorization code with PKCE,
//     redirect http://127.0.0.1:<any port>/callback (a native client: RFC 8252 §7.3 loopback ports), logout
//     back to http://127.0.0.1:<any port>/. Citizens log in on the provider's development login page with
//     any login (taken as their personal identity number) and any password; their ID token's `sub` is
//     `citizen-<login>` and the number is the claim `https://id.oidc.se/claim/personalIdentityNumber`
//     (scope `https://id.oidc.se/scope/naturalPersonNumber`, served from userinfo as OIDC Core §5.4 has
//     it). The portal client's grant is given without a consent screen (a first-party client).
// Resource indicators (RFC 8707) are on: a token request with `resource=<OIDC_RESOURCE>` (default
// urn:caap:management-api) gets a JWT access token (RS256) whose `aud` is that resource; the resource
// `urn:caap:some-other-api` exists too, for tokens meant for someone else.
// Prints `oidc-provider ready issuer=<URL>` once it listens. Fresh keys on every start.

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
const resource = process.env.OIDC_RESOURCE ?? 'urn:caap:management-api';
const otherResource = 'urn:caap:some-other-api';
const portalClientId = process.env.OIDC_PORTAL_CLIENT_ID ?? 'caap-portal';
const pnrScope = 'https://id.oidc.se/scope/naturalPersonNumber';
const pnrClaim = 'https://id.oidc.se/claim/personalIdentityNumber';

function key(type, options, alg) {
  const { privateKey } = generateKeyPairSync(type, options);
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg, use: 'sig' };
}

const configuration = {
  clients: [
    {
      client_id: process.env.OIDC_ADMIN_CLIENT_ID ?? 'caap-admin',
      client_secret: process.env.OIDC_ADMIN_CLIENT_SECRET ?? 'caap-admin-secret-0123456789',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'caap:admin caap:read',
    },
    {
      client_id: process.env.OIDC_READER_CLIENT_ID ?? 'caap-reader',
      client_secret: process.env.OIDC_READER_CLIENT_SECRET ?? 'caap-reader-secret-0123456789',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'caap:read',
    },
    {
      client_id: portalClientId,
      client_secret: process.env.OIDC_PORTAL_CLIENT_SECRET ?? 'caap-portal-secret-0123456789',
      application_type: 'native',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      post_logout_redirect_uris: ['http://127.0.0.1/'],
      scope: `openid ${pnrScope}`,
    },
  ],
  scopes: ['openid', 'caap:admin', 'caap:read', pnrScope],
  claims: { openid: ['sub'], [pnrScope]: [pnrClaim] },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: `citizen-${id}`, [pnrClaim]: id };
      },
    };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    if (ctx.oidc.client.clientId !== portalClientId) {
      return undefined;
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(`openid ${pnrScope}`);
    grant.addOIDCClaims([pnrClaim]);
    await grant.save();
    return grant;
  },
  jwks: {
    keys: [
      key('rsa', { modulusLength: 2048 }, 'RS256'),
      key('ec', { namedCurve: 'P-256' }, 'ES256'),
    ],
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        if (indicator !== resource && indicator !== otherResource) {
          throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        }
        return {
          scope: 'caap:admin caap:read',
          audience: indicator,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
};

const server = (await import('node:http')).createServer();
server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  server.on('request', provider.callback());
  console.log(`oidc-provider ready issuer=${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
