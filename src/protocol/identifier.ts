/** SPEC names (node_id, service_id, kind, mount_id, ...): 1–128 characters of [A-Za-z0-9._-], not `.` or `..`. */
export function isIdentifier(text: string): boolean {
  return /^[A-Za-z0-9._-]{1,128}$/.test(text) && text !== '.' && text !== '..';
}
