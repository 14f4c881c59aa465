import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO } from '../../helpers/node.js';
import { ACHERON_VERSION } from '../../../src/protocol/version.js';

t.equal(ACHERON_VERSION, JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).version, 'version.ts matches package.json');
