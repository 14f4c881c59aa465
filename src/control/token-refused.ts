/**
 * A token change the store refuses for what was asked (an unknown token id, the last admin token):
 * a failure of the command (exit 1, SPEC §1: its command line was good, the store's state says no),
 * whichever the store (file or etcd). A store that fails (a lock held too long, an I/O error, etcd
 * unavailable) throws anything else.
 */
export class TokenRefused extends Error {}
Object.defineProperty(TokenRefused.prototype, 'name', { value: 'TokenRefused', enumerable: false, configurable: true, writable: true });
