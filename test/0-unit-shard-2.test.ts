// Shard 2 of the unit tests (test/helpers/unit-shard.ts says why they share processes).
import { runUnitShard } from './helpers/unit-shard.js';

await runUnitShard(2, 4);
