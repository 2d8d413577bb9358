/** Evaluated right after cbor-x: puts Deno's global `Buffer` back (see hide_buffer.ts). */
import { savedBuffer } from "./hide_buffer.ts";

if (savedBuffer?.configurable) Object.defineProperty(globalThis, "Buffer", savedBuffer);
