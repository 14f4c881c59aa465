/** One key as a JSON pointer token (RFC 6901): `~` and `/` are written `~0` and `~1`. */
export function pointerToken(key: unknown): string {
  return String(key).replaceAll('~', '~0').replaceAll('/', '~1');
}
