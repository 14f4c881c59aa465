#!/usr/bin/env node
// FUSE handlers and fs exports share libuv's thread pool: widen it before anything uses it (SPEC §12).
process.env.UV_THREADPOOL_SIZE ??= '32';
const { main } = await import('../dist/cli/main.js');
// Exit explicitly: fuse-native's handles can keep the loop alive after the tree is unmounted.
process.exit(await main(process.argv.slice(2)));
