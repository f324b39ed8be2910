import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { ConfigProblem, KeyPath } from './load.js';

/*
 * Every TLS file a config names (the edge's certificates and client CA, upstreams' CAs and
 * client certificates, Redis's) is read and checked here, while the config is validated: a
 * problem is a line with the file, its key path and the reason, never a TLS error at the
 * first handshake. The plan then carries the PEM text, so workers read no files and a
 * reload (or a watched file's change) that brings a bad file is refused before anything swaps.
 */

/** What the gateway reports about a certificate (admin API, metrics, logs). */
export interface CertificateInfo {
  subject: string;
  /** `subjectAltName` entries as Node prints them: `DNS:api.example.com`, `URI:spiffe://…`. */
  altNames: string[];
  serial: string;
  /** SHA-256 of the DER, colon-separated hex, as `X509Certificate.fingerprint256`. */
  fingerprint256: string;
  /** Epoch milliseconds. */
  notBefore: number;
  notAfter: number;
}

/** A file as read: its absolute path (what is watched and named in errors) and its text. */
export interface PemFile {
  file: string;
  pem: string;
  /** sha256 of the text: what reload fingerprints compare. */
  hash: string;
}

/** A certificate chain and its key, checked to belong together. */
export interface KeyPairFiles {
  cert: PemFile;
  key: PemFile;
  /** Of the leaf (first) certificate. */
  info: CertificateInfo;
}

/** Warn when a served or client certificate expires within this many days. */
export const EXPIRY_WARNING_DAYS = 14;

/**
 * Reads files relative to `configDir`, each once per validation however many keys name it,
 * and reports problems against the key path that named it.
 */
export class TlsFileReader {
  readonly #configDir: string;
  readonly #problems: ConfigProblem[];
  readonly #read = new Map<string, { text: string } | { error: string }>();
  readonly #now: number;

  constructor(configDir: string, problems: ConfigProblem[], now = Date.now()) {
    this.#configDir = configDir;
    this.#problems = problems;
    this.#now = now;
  }

  /** Every file read so far (absolute paths, in first-read order): what a reload watches. */
  files(): string[] {
    return [...this.#read.keys()];
  }

  /** The file at `path` (as written in the config, under `at`), or undefined after a problem. */
  file(path: string, at: KeyPath): PemFile | undefined {
    const file = isAbsolute(path) ? path : resolve(this.#configDir, path);
    let result = this.#read.get(file);
    if (result === undefined) {
      try {
        result = { text: readFileSync(file, 'utf8') };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        result = {
          error: `cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)}`,
        };
      }
      this.#read.set(file, result);
    }
    if ('error' in result) {
      this.#problems.push({ path: at, message: result.error });
      return undefined;
    }
    return { file, pem: result.text, hash: createHash('sha256').update(result.text).digest('hex') };
  }

  /**
   * A certificate chain and its private key (`certAt`/`keyAt` name the keys). Refuses
   * unreadable files, text that is not a PEM certificate or key, a key that does not match the
   * leaf certificate, and a leaf that has expired or is not yet valid.
   */
  keyPair(certPath: string, keyPath: string, certAt: KeyPath, keyAt: KeyPath): KeyPairFiles | undefined {
    const cert = this.file(certPath, certAt);
    const key = this.file(keyPath, keyAt);
    if (cert === undefined || key === undefined) return undefined;
    const leaf = this.#certificate(cert, certAt);
    if (leaf === undefined) return undefined;
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(key.pem);
    } catch {
      this.#problems.push({
        path: keyAt,
        message: `${key.file} is not a PEM private key (or it is encrypted)`,
      });
      return undefined;
    }
    if (!leaf.checkPrivateKey(privateKey)) {
      this.#problems.push({
        path: keyAt,
        message: `${key.file} is not the key of the certificate in ${cert.file}`,
      });
      return undefined;
    }
    const info = certificateInfo(leaf);
    if (info.notAfter <= this.#now) {
      this.#problems.push({
        path: certAt,
        message: `the certificate in ${cert.file} expired on ${new Date(info.notAfter).toISOString()}`,
      });
      return undefined;
    }
    if (info.notBefore > this.#now) {
      this.#problems.push({
        path: certAt,
        message: `the certificate in ${cert.file} is not valid before ${new Date(info.notBefore).toISOString()}`,
      });
      return undefined;
    }
    return { cert, key, info };
  }

  /** A bundle of one or more CA certificates (to verify peers against). */
  caBundle(path: string, at: KeyPath): PemFile | undefined {
    const file = this.file(path, at);
    if (file === undefined) return undefined;
    if (this.#certificate(file, at) === undefined) return undefined;
    return file;
  }

  #certificate(file: PemFile, at: KeyPath): X509Certificate | undefined {
    if (!file.pem.includes('-----BEGIN CERTIFICATE-----')) {
      this.#problems.push({ path: at, message: `${file.file} has no PEM certificate` });
      return undefined;
    }
    try {
      // X509Certificate parses the first certificate of the text: the leaf of a chain.
      return new X509Certificate(file.pem);
    } catch (err) {
      this.#problems.push({
        path: at,
        message: `${file.file}: not a valid certificate (${(err as Error).message})`,
      });
      return undefined;
    }
  }
}

/** The leaf certificate of a PEM chain, described. */
export function certificateInfo(cert: X509Certificate | string): CertificateInfo {
  const x509 = typeof cert === 'string' ? new X509Certificate(cert) : cert;
  return {
    subject: x509.subject.replaceAll('\n', ', '),
    altNames: x509.subjectAltName?.split(', ') ?? [],
    serial: x509.serialNumber,
    fingerprint256: x509.fingerprint256,
    notBefore: Date.parse(x509.validFrom),
    notAfter: Date.parse(x509.validTo),
  };
}
