// etcd3's text for a lost lease, as our log and /readyz say it (server-registration.ts).
import t from 'tap';
import { EtcdLeaseInvalidError } from 'etcd3';
import { leaseLostReason } from '../../../../src/control/etcd/server-registration.js';

t.equal(
  leaseLostReason(new EtcdLeaseInvalidError('We lost connection to etcd and our lease has expired.')),
  'its lease lapsed: no keepalive reached etcd in time',
  'the lease that lapsed while etcd was away',
);
t.equal(leaseLostReason(new EtcdLeaseInvalidError('7587884012526581505')), 'lease 7587884012526581505 expired or was revoked', 'a lease etcd says is gone');
t.equal(leaseLostReason(new Error('14 UNAVAILABLE: No connection established')), '14 UNAVAILABLE: No connection established', 'anything else as it is');
