import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT, type JWTPayload } from 'jose';

export interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  publicJwk: JWK;
}

export async function newRsaKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** Signs an RS256 token with `key` (kid in the header). */
export function signRs256(
  key: SigningKey,
  claims: JWTPayload,
  expiresIn: string | number = '5m',
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuedAt()
    .setExpirationTime(expiresIn)
    .sign(key.privateKey);
}

export interface IdentityProvider {
  url: string;
  /** The keys the JWKS endpoint publishes; replace to rotate. */
  keys: SigningKey[];
  jwksFetches: number;
  /** When true, every request hangs (a stalled IdP). */
  hang: boolean;
  close(): Promise<void>;
}

/**
 * A real local identity provider: OIDC discovery at `/.well-known/openid-configuration`
 * (issuer = its own URL) and the JWKS at `/jwks`.
 */
export async function startIdentityProvider(keys: SigningKey[]): Promise<IdentityProvider> {
  const idp: IdentityProvider = {
    url: '',
    keys,
    jwksFetches: 0,
    hang: false,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    if (idp.hang) return;
    let body: unknown;
    if (req.url === '/.well-known/openid-configuration') {
      body = { issuer: idp.url, jwks_uri: `${idp.url}/jwks` };
    } else if (req.url === '/jwks') {
      idp.jwksFetches++;
      body = { keys: idp.keys.map((k) => k.publicJwk) };
    } else {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  idp.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return idp;
}
