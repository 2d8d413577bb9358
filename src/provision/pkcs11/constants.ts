/**
 * The few PKCS #11 v2.40 numbers linkd's line signer uses (values from the standard's
 * pkcs11t.h, checked against p11-kit's pkcs11.h), and the names of the return values (CK_RV)
 * that messages show, so that an operator can look them up in the HSM's manual.
 */

export const CKR = {
  OK: 0x0,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  BUFFER_TOO_SMALL: 0x150,
} as const;

/** Names of the return values a line signer may meet (others are shown in hex). */
const CKR_NAMES: Record<number, string> = {
  0x0: "CKR_OK",
  0x1: "CKR_CANCEL",
  0x2: "CKR_HOST_MEMORY",
  0x3: "CKR_SLOT_ID_INVALID",
  0x5: "CKR_GENERAL_ERROR",
  0x6: "CKR_FUNCTION_FAILED",
  0x7: "CKR_ARGUMENTS_BAD",
  0x9: "CKR_NEED_TO_CREATE_THREADS",
  0xa: "CKR_CANT_LOCK",
  0x12: "CKR_ATTRIBUTE_TYPE_INVALID",
  0x13: "CKR_ATTRIBUTE_VALUE_INVALID",
  0x20: "CKR_DATA_INVALID",
  0x21: "CKR_DATA_LEN_RANGE",
  0x30: "CKR_DEVICE_ERROR",
  0x31: "CKR_DEVICE_MEMORY",
  0x32: "CKR_DEVICE_REMOVED",
  0x50: "CKR_FUNCTION_CANCELED",
  0x54: "CKR_FUNCTION_NOT_SUPPORTED",
  0x60: "CKR_KEY_HANDLE_INVALID",
  0x63: "CKR_KEY_TYPE_INCONSISTENT",
  0x68: "CKR_KEY_FUNCTION_NOT_PERMITTED",
  0x70: "CKR_MECHANISM_INVALID",
  0x71: "CKR_MECHANISM_PARAM_INVALID",
  0x82: "CKR_OBJECT_HANDLE_INVALID",
  0x90: "CKR_OPERATION_ACTIVE",
  0x91: "CKR_OPERATION_NOT_INITIALIZED",
  0xa0: "CKR_PIN_INCORRECT",
  0xa1: "CKR_PIN_INVALID",
  0xa2: "CKR_PIN_LEN_RANGE",
  0xa3: "CKR_PIN_EXPIRED",
  0xa4: "CKR_PIN_LOCKED",
  0xb0: "CKR_SESSION_CLOSED",
  0xb1: "CKR_SESSION_COUNT",
  0xb3: "CKR_SESSION_HANDLE_INVALID",
  0xb4: "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
  0xb5: "CKR_SESSION_READ_ONLY",
  0xe0: "CKR_TOKEN_NOT_PRESENT",
  0xe1: "CKR_TOKEN_NOT_RECOGNIZED",
  0xe2: "CKR_TOKEN_WRITE_PROTECTED",
  0x100: "CKR_USER_ALREADY_LOGGED_IN",
  0x101: "CKR_USER_NOT_LOGGED_IN",
  0x102: "CKR_USER_PIN_NOT_INITIALIZED",
  0x103: "CKR_USER_TYPE_INVALID",
  0x150: "CKR_BUFFER_TOO_SMALL",
  0x190: "CKR_CRYPTOKI_NOT_INITIALIZED",
  0x191: "CKR_CRYPTOKI_ALREADY_INITIALIZED",
};

/** `CKR_PIN_INCORRECT`, or `CKR 0x...` for a value without a name here. */
export function ckrName(rv: number): string {
  return CKR_NAMES[rv] ?? `CKR 0x${rv.toString(16)}`;
}

export const CKO_PUBLIC_KEY = 2n;
export const CKO_PRIVATE_KEY = 3n;
export const CKA_CLASS = 0x0n;
export const CKA_LABEL = 0x3n;
export const CKA_ID = 0x102n;
export const CKA_KEY_TYPE = 0x100n;
export const CKA_EC_POINT = 0x181n;
export const CKK_EC_EDWARDS = 0x40n;
export const CKM_EDDSA = 0x1057n;
export const CKU_USER = 1n;
export const CKF_SERIAL_SESSION = 0x4n;
export const CKF_TOKEN_INITIALIZED = 0x400n;
