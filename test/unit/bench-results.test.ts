// `node bench/run.mjs --only NAME` rewrites just NAME's section of docs/BENCHMARKS.md and its summary
// rows (bench/report.mjs spliceResults); every other section stays as it was written.
import t from 'tap';

const reportModule: string = '../../bench/report.mjs';
const { spliceResults } = (await import(reportModule)) as { spliceResults: (region: string, markdown: string, names: string[]) => string };

const region = `
## Results

Run of an earlier day.

### Summary

| benchmark | measured | target | result |
|---|---|---|---|
| invoke row | 1 | 2 | PASS |
| wasm row | 3 ms | < 1 ms | FAIL |

### 1. Invoke round trip

Old invoke body, with a note written by hand.

### 9. Wasm drivers (an older heading)

Old wasm body.

### 10. Partition detection and recovery

Old partition body.
`;

const fresh = `## Results

Run of today.

### Summary

| benchmark | measured | target | result |
|---|---|---|---|
| wasm row | 0.9 ms | < 1 ms | PASS |
| new wasm row | 5 | 6 | PASS |

### 1. Invoke round trip

Not measured yet: \`node bench/run.mjs --only invoke\`.

### 9. Wasm drivers against native spawn and persistent drivers

New wasm body.

### 10. Partition detection and recovery

Not measured yet.
`;

t.test('only the measured section and its summary rows change', async (t) => {
  const out = spliceResults(region, fresh, ['wasm']);
  t.match(
    out,
    /### 9\. Wasm drivers against native spawn and persistent drivers\n\nNew wasm body\.\n\n### 10\./,
    'the section, found by its number, replaced whole',
  );
  t.notMatch(out, /Old wasm body|an older heading/);
  t.match(out, /Old invoke body, with a note written by hand\./, 'an unmeasured section keeps its text');
  t.match(out, /Old partition body\./);
  t.notMatch(out, /Not measured yet/);
  t.match(
    out,
    /\| invoke row \| 1 \| 2 \| PASS \|\n\| wasm row \| 0\.9 ms \| < 1 ms \| PASS \|\n\| new wasm row \| 5 \| 6 \| PASS \|\n/,
    'rows replaced by label, new ones appended',
  );
  t.match(out, /Run of an earlier day\./, 'the header of the last full run stays');
});

t.test('a section the document does not have yet is appended', async (t) => {
  const out = spliceResults(region.replace(/### 10\.[^]*$/, ''), fresh, ['partition']);
  t.match(out, /Old wasm body\.\n\n### 10\. Partition detection and recovery\n\nNot measured yet\.\n$/);
});
