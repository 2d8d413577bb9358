/**
 * Bounded reads of files named on the command line or in the config: a file may claim any size
 * (a FIFO or a device such as /dev/zero claims 0 and never ends), so linkd never reads more
 * than it can use, plus one byte to tell that there was more.
 */

/**
 * Reads from `file` until its end or until `max` bytes are read, whichever comes first. The
 * result is a view of one buffer; nothing else holds the bytes read, so wiping it wipes them.
 */
export function readAtMost(file: Deno.FsFile, max: number): Uint8Array {
  const buf = new Uint8Array(max);
  let n = 0;
  while (n < max) {
    const got = file.readSync(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return buf.subarray(0, n);
}

/** Opens `path` and reads at most `max` bytes of it (see readAtMost); errors are Deno's. */
export function readFileAtMost(path: string, max: number): Uint8Array {
  const file = Deno.openSync(path, { read: true });
  try {
    return readAtMost(file, max);
  } finally {
    file.close();
  }
}
