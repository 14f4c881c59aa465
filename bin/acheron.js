#!/usr/bin/env node
// FUSE handlers and fs exports share libuv's thread pool: widen it before anything uses it (SPEC §12).
process.env.UV_THREADPOOL_SIZE ??= '32';
const argv = process.argv.slice(2);
// A daemon answers SIGHUP once it is up; one that came while the CLI loads (a second or more on a
// busy machine: `systemctl reload` or logrotate right after a start) ended it, exit 129. Held off
// from here; the daemon's own handler takes the later ones. Any other command ends on it as before.
const holdHangup = () => {};
process.on('SIGHUP', holdHangup);
const { isDaemonArgv } = await import('../dist/cli/daemon-argv.js');
if (!isDaemonArgv(argv)) process.off('SIGHUP', holdHangup);
const { main } = await import('../dist/cli/main.js');
// Exit explicitly: fuse-native's handles can keep the loop alive after the tree is unmounted.
process.exit(await main(argv));
