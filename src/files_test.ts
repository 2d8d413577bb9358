import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  createFileAtomically,
  type Fail,
  openRegularFile,
  readRegularFile,
  writeAll,
} from "./files.ts";
import { fullDisk, ifTmpfs } from "../test/support/full_disk.ts";

const dir = Deno.makeTempDirSync({ prefix: "linkd-files-" });
test.after(() => Deno.removeSync(dir, { recursive: true }));

class Refused extends Error {
  constructor(readonly why: string, readonly hasCause: boolean) {
    super(why);
  }
}
const fail: Fail = (why, cause) => new Refused(why, cause !== undefined);

/** Runs `fn`, expects a Refused error, returns its reason. */
function refused(fn: () => unknown): Refused {
  try {
    fn();
  } catch (e) {
    assert.instance(e, Refused);
    return e as Refused;
  }
  assert.unreachable("expected a refusal");
  throw new Error("unreachable");
}

/** The names in `folder`, sorted. */
const names = (folder: string) => [...Deno.readDirSync(folder)].map((e) => e.name).sort();

test("readRegularFile() reads a regular file with a bound; null when nothing is there", () => {
  const p = `${dir}/a.txt`;
  Deno.writeTextFileSync(p, "hello");
  assert.equal(readRegularFile(p, 100, fail), new TextEncoder().encode("hello"));
  assert.is(readRegularFile(p, 3, fail)!.length, 3, "never more than asked");
  assert.is(readRegularFile(`${dir}/none`, 10, fail), null);
  assert.is(readRegularFile(`${dir}/no/such/folder`, 10, fail), null);
  Deno.symlinkSync(p, `${dir}/link`);
  assert.is(readRegularFile(`${dir}/link`, 100, fail)!.length, 5, "a link to a file is followed");
});

// Opening one of these could block (a FIFO), never end (/dev/zero), or read as an empty file
// (/dev/null): each is refused from stat() alone, with what it is, before it is opened.
test("readRegularFile() refuses a folder, a socket and devices, naming what they are", () => {
  assert.is(
    refused(() => readRegularFile(dir, 10, fail)).why,
    "it is a folder, not a regular file",
  );
  assert.is(
    refused(() => readRegularFile("/dev/null", 10, fail)).why,
    "it is a character device, not a regular file",
  );
  assert.match(refused(() => readRegularFile("/dev/zero", 10, fail)).why, /character device/);
  const sock = `${dir}/s.sock`;
  const listener = Deno.listen({ transport: "unix", path: sock });
  try {
    const r = refused(() => readRegularFile(sock, 10, fail));
    assert.is(r.why, "it is a socket, not a regular file");
    assert.not.ok(r.hasCause, "a wrong kind of file is the file's fault, not the system's");
  } finally {
    listener.close();
  }
});

test("openRegularFile() refuses a FIFO without opening it (an open would block)", async () => {
  const fifo = `${dir}/fifo`;
  const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
  assert.is(mk.code, 0);
  // This returns at all only because the FIFO is not opened: open(2) would wait for a writer.
  assert.is(refused(() => openRegularFile(fifo, fail)).why, "it is a FIFO, not a regular file");
  assert.is(
    refused(() => openRegularFile(fifo, fail, { write: true })).why,
    "it is a FIFO, not a regular file",
  );
});

test("createFileAtomically() creates the whole file and never replaces one", () => {
  const p = `${dir}/new.bin`;
  assert.is(
    createFileAtomically(p, (f) => writeAll(f, new Uint8Array([1, 2, 3])), fail),
    "created",
  );
  assert.equal(Deno.readFileSync(p), new Uint8Array([1, 2, 3]));
  // Something there already: "exists", and it is left exactly as it was.
  assert.is(createFileAtomically(p, (f) => writeAll(f, new Uint8Array([9])), fail), "exists");
  assert.equal(Deno.readFileSync(p), new Uint8Array([1, 2, 3]));
  const dangling = `${dir}/dangling`;
  Deno.symlinkSync(`${dir}/nowhere`, dangling);
  assert.is(
    createFileAtomically(dangling, (f) => writeAll(f, new Uint8Array([9])), fail),
    "exists",
  );
  assert.not.ok(names(dir).some((n) => n.includes(".tmp-")), "no temporary file left");
  assert.is(Deno.statSync(p).mode! & 0o777, defaultMode());
  const secret = `${dir}/secret.bin`;
  createFileAtomically(secret, (f) => writeAll(f, new Uint8Array([1])), fail, { mode: 0o600 });
  assert.is(Deno.statSync(secret).mode! & 0o777, 0o600);
});

test("createFileAtomically(): a write that fails midway leaves nothing behind", () => {
  const sub = Deno.makeTempDirSync({ dir, prefix: "fail-" });
  const p = `${sub}/rec.bin`;
  const enospc = Object.assign(new Error("No space left on device (os error 28)"), {
    code: "ENOSPC",
  });
  const r = refused(() =>
    createFileAtomically(p, (f) => {
      writeAll(f, new Uint8Array(1000)); // half written, then the disk is full
      throw enospc;
    }, fail)
  );
  assert.is(r.why, "no space left on the device (ENOSPC)");
  assert.ok(r.hasCause);
  assert.equal(names(sub), [], "neither the file nor a temporary file is left");
});

test("createFileAtomically() without hard links writes in place, exclusively, cleaning up", () => {
  const sub = Deno.makeTempDirSync({ dir, prefix: "nolink-" });
  const noLinks = {
    link: () => {
      throw new Deno.errors.PermissionDenied("Operation not permitted (os error 1)"); // vfat
    },
  };
  const p = `${sub}/rec.bin`;
  assert.is(
    createFileAtomically(p, (f) => writeAll(f, new Uint8Array([7])), fail, noLinks),
    "created",
  );
  assert.equal(Deno.readFileSync(p), new Uint8Array([7]));
  assert.is(
    createFileAtomically(p, (f) => writeAll(f, new Uint8Array([8])), fail, noLinks),
    "exists",
  );
  assert.equal(Deno.readFileSync(p), new Uint8Array([7]), "not replaced");
  let calls = 0;
  const q = `${sub}/other.bin`;
  refused(() =>
    createFileAtomically(
      q,
      () => {
        if (++calls === 2) throw Object.assign(new Error("EIO"), { code: "EIO" });
      },
      fail,
      noLinks,
    )
  );
  assert.equal(names(sub), ["rec.bin"], "the file written in place is removed on failure");
});

ifTmpfs(test)(
  "createFileAtomically() on a full disk (tmpfs): a refusal, nothing left",
  async () => {
    await fullDisk(async (mnt) => {
      const p = `${mnt}/flash.img`;
      const r = refused(() =>
        createFileAtomically(p, (f) => writeAll(f, new Uint8Array(256 * 1024).fill(0xff)), fail)
      );
      assert.is(r.why, "no space left on the device (ENOSPC)");
      assert.equal(names(mnt), [], "no partial file, no temporary file");
      // Room again: the same call succeeds.
      assert.is(
        createFileAtomically(p, (f) => writeAll(f, new Uint8Array(16 * 1024)), fail),
        "created",
      );
      await Promise.resolve();
    });
  },
);

/** The mode a file gets from a plain create (0o666 less the umask), as linkd's files always did. */
function defaultMode(): number {
  const probe = `${dir}/mode-probe`;
  Deno.writeFileSync(probe, new Uint8Array(0));
  const mode = Deno.statSync(probe).mode! & 0o777;
  Deno.removeSync(probe);
  return mode;
}

test.run();
