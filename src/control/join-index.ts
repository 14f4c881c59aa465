import type { TokenFile } from './token-file.js';
import { digestHex, type JoinTokenEntry } from './token-store.js';

/**
 * A token file's join tokens by digest (a hash lookup leaks nothing about the secret), built once
 * per version of the file (a batch of joins shares it); each token is hashed once, when first seen.
 */
export class JoinIndex {
  #index: { data: TokenFile; byDigest: Map<string, JoinTokenEntry> } | undefined;
  /** The digest of every join token seen in the file, so a reload or a join hashes only new tokens. */
  #digests = new Map<string, string>();

  of(data: TokenFile): Map<string, JoinTokenEntry> {
    if (this.#index?.data !== data) this.#index = { data, byDigest: this.#build(data) };
    return this.#index.byDigest;
  }

  /** Join tokens by digest; digests of tokens no longer in the file are forgotten. */
  #build(data: TokenFile): Map<string, JoinTokenEntry> {
    const digests = new Map<string, string>();
    const byDigest = new Map<string, JoinTokenEntry>();
    for (const entry of data.join) {
      const hex = this.#digests.get(entry.token) ?? digestHex(entry.token);
      digests.set(entry.token, hex);
      byDigest.set(hex, entry);
    }
    this.#digests = digests;
    return byDigest;
  }
}
