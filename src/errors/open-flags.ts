// open(2) flags as the kernel hands them to FUSE and as relays carry them: Linux values (SPEC §12:
// Linux only). One place, so a node mount, WorldFS and the relay policy read a flag the same way.

export const O_ACCMODE = 3;
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;

/** The open may write (O_WRONLY or O_RDWR). */
export function opensForWriting(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_RDONLY;
}

/** The open may read (O_RDONLY or O_RDWR). */
export function opensForReading(flags: number): boolean {
  return (flags & O_ACCMODE) !== O_WRONLY;
}

/** The open itself may change the file: it writes, or it truncates (O_RDONLY|O_TRUNC truncates on Linux). */
export function opensToChange(flags: number): boolean {
  return opensForWriting(flags) || (flags & O_TRUNC) !== 0;
}
