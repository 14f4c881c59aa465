/**
 * A token change the store refuses for what was asked (an unknown token id, the last admin token):
 * the asker's mistake, which `acheron token` reports as bad usage (exit 2). A store that fails
 * (a lock held too long, an I/O error, etcd unavailable) throws anything else.
 */
export class TokenRefused extends Error {}
Object.defineProperty(TokenRefused.prototype, 'name', { value: 'TokenRefused', enumerable: false, configurable: true, writable: true });
