/**
 * src/async: promise primitives any area may use. Owns `SerialQueue` (here): a node's catalog
 * changes, an open commit file's steps.
 *
 * Must not import: any other area of src/ (cli/, node/, control/, world/, runtime/, manifest/,
 * protocol/, fuse/, vfs/, store/, errors/): every area may import it.
 */
/**
 * Tasks of one key run one at a time, in call order, each after the previous one settled (a failed
 * task does not stop the next); different keys proceed in parallel. A key idle again is forgotten,
 * so keys may be short-lived objects (one open file) or ids (one node).
 */
export class SerialQueue<K> {
  #tails = new Map<K, Promise<unknown>>();

  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }
}
