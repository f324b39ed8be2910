const SAFE_HEADER_VALUE = /^[\x20-\x7e]*$/;

/**
 * A claim as an upstream header value: strings as they are, numbers and booleans as text,
 * arrays of scalars comma-joined, objects as JSON. Anything outside printable ASCII is
 * percent-encoded so a claim can never inject a header line. Missing claims send nothing.
 */
export function forwardedClaimValue(value: unknown): string | undefined {
  let text: string;
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) text = value.join(',');
  else text = JSON.stringify(value);
  return SAFE_HEADER_VALUE.test(text) ? text : encodeURIComponent(text);
}
