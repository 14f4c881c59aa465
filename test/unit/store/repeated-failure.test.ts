// A failure met every second (housekeeping on a full disk) was logged at error with its stack every
// time: two lines a second. Now once, then at most once a minute at warn with a count.
import t from 'tap';
import { pino } from 'pino';
import { REPEATED_FAILURE_LOG_EVERY_MS, RepeatedFailure } from '../../../src/store/repeated-failure.js';

t.test('the same failure: once with its stack, then once a minute with a count; a new one and the recovery are said', async (t) => {
  const lines: Array<{ level: number; msg: string; err?: { stack?: string }; repeated?: number; failures?: number }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  let nowMs = 0;
  const failure = new RepeatedFailure(log, 'housekeeping failed', 'housekeeping works again', () => nowMs);
  const full = new Error('ENOSPC: no space left on device, write');

  for (let second = 0; second < 60; second += 1, nowMs += 1_000) failure.failed(full);
  t.equal(lines.length, 1, 'a minute of failures: one line');
  t.match(lines[0], { level: 50, msg: 'housekeeping failed', err: { stack: /ENOSPC/ } }, 'the first at error, with its stack');

  nowMs = REPEATED_FAILURE_LOG_EVERY_MS;
  failure.failed(full);
  t.equal(lines.length, 2, 'a minute later: one more');
  t.match(lines[1], { level: 40, msg: 'housekeeping failed (again, 60 times since it was last logged)', repeated: 60 }, 'at warn, counted');
  t.notOk(lines[1]?.err, 'no stack');

  failure.failed(new Error('EIO: i/o error, write'));
  t.match(lines[2], { level: 50, msg: 'housekeeping failed', err: { stack: /EIO/ } }, 'another failure: said at once');

  failure.succeeded();
  failure.succeeded();
  t.equal(lines.length, 4, 'the recovery once');
  t.match(lines[3], { level: 30, msg: 'housekeeping works again (after 62 failures)', failures: 62 });
  failure.failed(full);
  t.match(lines[4], { level: 50, msg: 'housekeeping failed' }, 'failing again after a success: said at once');
});

t.test('run: a task that rejects is logged, never rethrown', async (t) => {
  const lines: string[] = [];
  const failure = new RepeatedFailure(pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }), 'tick failed', 'tick works again');
  await failure.run(() => Promise.reject(new Error('boom')));
  await failure.run(() => Promise.resolve());
  t.equal(lines.length, 2);
  t.match(lines[0], /"msg":"tick failed"/);
  t.match(lines[1], /"msg":"tick works again \(after 1 failure\)"/);
});
