// A real, certified OpenID Provider (panva/node-oidc-provider) for the social-login tests:
// one confidential client that must use PKCE, the built-in development login and consent
// pages (any login name is accepted and becomes the account id), RS256 id_tokens.
// Env: PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS (space-separated). Prints "ready" once listening.
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: process.env.REDIRECT_URIS.split(' '),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { required: () => true },
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'op-rs256', use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['edge-test-cookie-key'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // id_token carries the claims (the edge reads the id_token, not userinfo)
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@op.test`, email_verified: !id.startsWith('unverified'), name: `User ${id}` };
      },
    };
  },
});
provider.proxy = false;
// the dev pages warn on stderr about their use; keep the test log readable
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(port, '127.0.0.1', () => console.log('ready'));
