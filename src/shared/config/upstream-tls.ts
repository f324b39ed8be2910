import type { KeyPairFiles, PemFile, TlsFileReader } from './tls-files.js';
import type { Config } from './schema.js';

/*
 * Issue 15, upstream side: the files an upstream's `tls:` names, read and checked while the
 * config is validated (unreadable, not PEM, a key that is not the certificate's, an expired
 * certificate: one line each at its key path), so the plan carries their text and a worker
 * never opens a file or fails its first handshake on a config mistake.
 */

/** What validation read for one upstream's `tls:`. */
export interface UpstreamTlsFiles {
  ca: PemFile | undefined;
  /** The client certificate and its key, checked to belong together. */
  pair: KeyPairFiles | undefined;
}

/** By upstream name, for every configured upstream with a `tls:` block. */
export function checkUpstreamTls(config: Config, tls: TlsFileReader): Record<string, UpstreamTlsFiles> {
  const out: Record<string, UpstreamTlsFiles> = {};
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const settings = upstream.tls;
    if (settings === undefined) continue;
    const at = ['upstreams', name, 'tls'];
    out[name] = {
      ca: settings.ca === undefined ? undefined : tls.caBundle(settings.ca, [...at, 'ca']),
      pair:
        settings.cert === undefined || settings.key === undefined
          ? undefined
          : tls.keyPair(settings.cert, settings.key, [...at, 'cert'], [...at, 'key']),
    };
  }
  return out;
}
