/**
 * linkd's coded errors. Three kinds never mix (see ../shared/STYLE.md):
 * a caller's mistake (a plain `TypeError` or `RangeError`), something wrong with data or the environment
 * (`LinkdError` with a code from `Code`), and later OAuth errors a server sent.
 *
 * Messages never carry a secret: callers pass sizes, offsets and names, never key or token bytes.
 */

/** Exit codes from sysexits.h, as promised in CONTRACT.md section 1. */
export const Exit = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  UNAVAILABLE: 69,
  CANTCREAT: 73,
  TEMPFAIL: 75,
  CONFIG: 78,
} as const;
export type ExitCode = typeof Exit[keyof typeof Exit];

/** Stable error codes. Tests and the bus match on these, never on message text. */
export const Code = {
  // flash
  FLASH_RANGE: "FLASH_RANGE",
  FLASH_ALIGN: "FLASH_ALIGN",
  FLASH_NOT_ERASED: "FLASH_NOT_ERASED",
  FLASH_WORN_OUT: "FLASH_WORN_OUT",
  FLASH_POWER_LOSS: "FLASH_POWER_LOSS",
  FLASH_IO: "FLASH_IO",
  FLASH_MISSING: "FLASH_MISSING",
  FLASH_GEOMETRY: "FLASH_GEOMETRY",
  FLASH_BUSY: "FLASH_BUSY",
  // store
  STORE_FULL: "STORE_FULL",
  STORE_TOO_LARGE: "STORE_TOO_LARGE",
  STORE_CORRUPT: "STORE_CORRUPT",
  STORE_KEY: "STORE_KEY",
  // seal and keys
  SEAL_MALFORMED: "SEAL_MALFORMED",
  SEAL_AUTH: "SEAL_AUTH",
  SEAL_BINDING: "SEAL_BINDING",
  OTP_BLANK: "OTP_BLANK",
  OTP_PROGRAMMED: "OTP_PROGRAMMED",
  OTP_CORRUPT: "OTP_CORRUPT",
  OTP_MISSING: "OTP_MISSING",
  // provisioning and identity
  ALREADY_PROVISIONED: "ALREADY_PROVISIONED",
  NOT_PROVISIONED: "NOT_PROVISIONED",
  BAD_SERIAL: "BAD_SERIAL",
  BAD_PRODUCT_ID: "BAD_PRODUCT_ID",
  BAD_CLIENT_ID: "BAD_CLIENT_ID",
  BAD_LINE_KEY: "BAD_LINE_KEY",
  LINE_KEY_MISSING: "LINE_KEY_MISSING",
  IDENTITY_CORRUPT: "IDENTITY_CORRUPT",
  // configuration and command line
  CONFIG: "CONFIG",
  CONFIG_MISSING: "CONFIG_MISSING",
  USAGE: "USAGE",
  IO: "IO",
  // the plant's ledger (src/ledger/)
  LEDGER_TAKEN: "LEDGER_TAKEN",
  LEDGER_UNAVAILABLE: "LEDGER_UNAVAILABLE",
  LEDGER_DATA: "LEDGER_DATA",
  // files linkd writes
  FILE_WRITE: "FILE_WRITE",
  OUTPUT_EXISTS: "OUTPUT_EXISTS",
} as const;
export type ErrorCode = typeof Code[keyof typeof Code];

/** The exit code a foreground command uses for each error code. */
const EXIT_OF: Record<ErrorCode, ExitCode> = {
  FLASH_RANGE: Exit.DATAERR,
  FLASH_ALIGN: Exit.DATAERR,
  FLASH_NOT_ERASED: Exit.DATAERR,
  FLASH_WORN_OUT: Exit.DATAERR,
  FLASH_POWER_LOSS: Exit.DATAERR,
  // A flash that exists but cannot be read (permission denied, EIO, a symlink loop) is bad
  // input data; 66 is only for a flash or key file that does not exist.
  FLASH_IO: Exit.DATAERR,
  FLASH_MISSING: Exit.NOINPUT,
  FLASH_GEOMETRY: Exit.CONFIG,
  // The flash is in use by a running linkd: try again after stopping it (CONTRACT.md section 1).
  FLASH_BUSY: Exit.TEMPFAIL,
  STORE_FULL: Exit.DATAERR,
  STORE_TOO_LARGE: Exit.DATAERR,
  STORE_CORRUPT: Exit.DATAERR,
  STORE_KEY: Exit.DATAERR,
  SEAL_MALFORMED: Exit.DATAERR,
  SEAL_AUTH: Exit.DATAERR,
  SEAL_BINDING: Exit.DATAERR,
  OTP_BLANK: Exit.DATAERR,
  OTP_PROGRAMMED: Exit.CANTCREAT,
  OTP_CORRUPT: Exit.DATAERR,
  OTP_MISSING: Exit.NOINPUT,
  ALREADY_PROVISIONED: Exit.CANTCREAT,
  NOT_PROVISIONED: Exit.DATAERR,
  BAD_SERIAL: Exit.DATAERR,
  BAD_PRODUCT_ID: Exit.DATAERR,
  BAD_CLIENT_ID: Exit.DATAERR,
  BAD_LINE_KEY: Exit.DATAERR,
  LINE_KEY_MISSING: Exit.NOINPUT,
  IDENTITY_CORRUPT: Exit.DATAERR,
  CONFIG: Exit.CONFIG,
  CONFIG_MISSING: Exit.CONFIG,
  USAGE: Exit.USAGE,
  IO: Exit.NOINPUT,
  // The serial (or the device key) is in the plant's ledger for another device or station:
  // refused before the device is touched, as an already provisioned device is.
  LEDGER_TAKEN: Exit.CANTCREAT,
  // The ledger cannot be reached or answered with a failure: a service the foreground command
  // needs is unavailable, as an unreachable auth server is.
  LEDGER_UNAVAILABLE: Exit.UNAVAILABLE,
  // The ledger holds what it must not: a row that fails its checks (`linkd ledger verify`).
  LEDGER_DATA: Exit.DATAERR,
  // A file linkd creates (the flash created erased, the OTP when programmed, --record-out) could
  // not be written: a full disk, an I/O error. Nothing partial is left, so the file still does
  // not exist: 66. (sysexits has EX_IOERR, 74, for this; the contract has no such code yet.)
  FILE_WRITE: Exit.NOINPUT,
  // --record-out names a file that exists: the command line must name a new one (never
  // overwritten); checked before the device is touched.
  OUTPUT_EXISTS: Exit.USAGE,
};

/** An error with a stable code. The message is one line, sentence case, no full stop. */
export class LinkdError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LinkdError";
    this.code = code;
  }
  get exitCode(): ExitCode {
    return EXIT_OF[this.code];
  }
}

export function isLinkdError(e: unknown, code?: ErrorCode): e is LinkdError {
  return e instanceof LinkdError && (code === undefined || e.code === code);
}
