/**
 * The HSM's user PIN, from the file a PKCS #11 URI names (`pin-source=file:PATH`). A secret like
 * the line key file (line_files.ts): refused when group or others may read or write it, only a
 * regular file is opened, at most MAX_PIN_FILE_BYTES + 1 bytes are read, and one trailing line
 * break is dropped (`echo PIN > file`). The caller wipes the bytes after C_Login. No message
 * ever holds the PIN, nor its length.
 */
import { Code, LinkdError } from "../../errors.ts";
import { readPrivateFile } from "../../files.ts";

/** Largest PIN file read; PINs are far shorter. */
export const MAX_PIN_FILE_BYTES = 256;

/** The PIN in the file at `path` for the key `display` names; the caller wipes it. */
export function readPinFile(path: string, display: string): Uint8Array {
  const fail = (why: string, cause?: unknown) =>
    new LinkdError(
      Code.BAD_LINE_KEY,
      `Cannot read the PIN of line key ${display} from ${path}: ${why}`,
      { cause },
    );
  const bytes = readPrivateFile(
    path,
    MAX_PIN_FILE_BYTES,
    fail,
    (mode) => fail(`its mode ${mode} lets group or others read or write it; run chmod 600 ${path}`),
  );
  if (bytes === null) {
    throw new LinkdError(
      Code.LINE_KEY_MISSING,
      `Cannot read the PIN of line key ${display} from ${path}: file not found; check pin-source`,
    );
  }
  if (bytes.length > MAX_PIN_FILE_BYTES) {
    bytes.fill(0);
    throw fail(`the file is more than ${MAX_PIN_FILE_BYTES} bytes; it must hold the PIN only`);
  }
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  const pin = bytes.slice(0, end);
  bytes.fill(0);
  if (pin.length === 0) throw fail("the file is empty; write the token's user PIN in it");
  return pin;
}
