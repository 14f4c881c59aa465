// The replay ring's two positions: the head, which on etcd also follows revisions that are no event
// (lease refreshes, tunnel keys), and the last event's seq, which only an event moves (it is what
// acheron_event_seq reports, and what the "no event in 6 h" alert watches).
import t from 'tap';
import { CatalogEvent } from '../../../src/control/catalog-event.js';
import { EventRing } from '../../../src/control/event-ring.js';

const event = (seq: number): CatalogEvent =>
  new CatalogEvent(seq, {
    kind: 'upsert',
    timestamp_ms: seq,
    node: { node_id: 'n', node_name: 'n', platform: {}, labels: {}, state: 'online', services: [] },
    delta: { changed: true, timestamp_ms: seq, added: [], updated: [], removed: [] },
  });

t.test('advance moves the head, not the last event; add moves both', async (t) => {
  const ring = new EventRing(4, [], 5_999, 5_999);
  t.equal(ring.lastEventSeq, 0, 'no event yet');
  ring.add(event(6_000));
  t.same([ring.head, ring.lastEventSeq], [6_000, 6_000], 'an event: both');
  ring.advance(7_999);
  ring.advance(8_999);
  t.same([ring.head, ring.lastEventSeq], [8_999, 6_000], 'revisions with no event: the head only');
  ring.add(event(9_001));
  t.same([ring.head, ring.lastEventSeq], [9_001, 9_001]);
});

t.test('a ring built from history starts at its newest event; one known from a listing counts when newer', async (t) => {
  const ring = new EventRing(2, [event(3), event(4), event(7)], 7);
  t.equal(ring.lastEventSeq, 7, 'the newest retained');
  ring.knownEvent(5);
  t.equal(ring.lastEventSeq, 7, 'an older one does not move it back');
  const listed = new EventRing(2, [], 12_999, 12_999);
  listed.knownEvent(11_002);
  t.same([listed.head, listed.lastEventSeq], [12_999, 11_002], 'the newest event a listed record names, below the head');
  listed.restart(20_999, 'compacted');
  t.equal(listed.lastEventSeq, 11_002, 'a restart (events missed) keeps it until told of a newer one');
});
