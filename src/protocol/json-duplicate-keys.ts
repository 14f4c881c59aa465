import { pointerToken } from './json-pointer.js';

/** One object or array being scanned: its JSON pointer, and the keys seen so far (null: an array). */
interface Container {
  pointer: string;
  keys: Set<string> | null;
  /** The last key of an object; the index of the current element of an array. */
  key: string;
  index: number;
}

/**
 * The JSON pointer of the first key written twice in one object of `text`, which must be valid JSON
 * (JSON.parse took it), or undefined. JSON.parse keeps the last of the two silently; in a hand-written
 * document such as a manifest, the first one was meant too, and one of them is then not used.
 */
export function firstDuplicateKey(text: string): string | undefined {
  const open: Container[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = open.at(-1);
    if (c === '"') {
      const end = stringEnd(text, i);
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (top.keys.has(key)) return `${top.pointer}/${pointerToken(key)}`;
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      const pointer = top ? `${top.pointer}/${top.keys ? pointerToken(top.key) : top.index}` : '';
      open.push({ pointer, keys: c === '{' ? new Set() : null, key: '', index: 0 });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      open.pop();
    } else if (c === ',' && top) {
      if (top.keys) expectKey = true;
      else top.index++;
    }
  }
  return undefined;
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  for (let i = start + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return text.length - 1;
}
