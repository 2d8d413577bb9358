/**
 * Cuts a byte stream into whole MQTT packets, never holding more than one packet of at most
 * `maxPacketSize` bytes (fixed header included, as MQTT 5's Maximum Packet Size counts).
 *
 * The fixed header is checked as it arrives: a Remaining Length of more than 4 bytes, or not
 * in its shortest form, is malformed; a packet announced bigger than the maximum is refused
 * (`packet_too_large`) before its body is read. A packet wholly inside one chunk is yielded as
 * a view of that chunk (valid until the next `feed`); one spread over chunks is assembled in a
 * buffer of exactly its size.
 */
import { decodeVarint } from "./codec.ts";
import { protocolError } from "./errors.ts";
import { PACKET_MAX, packetName } from "./packets.ts";

export class Framer {
  readonly #max: number;
  /** The fixed header seen so far, while it is incomplete. */
  readonly #head = new Uint8Array(5);
  #headLen = 0;
  /** The packet being assembled across chunks, and how much of it is filled. */
  #packet: Uint8Array | null = null;
  #filled = 0;

  constructor(maxPacketSize: number) {
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 2 || maxPacketSize > PACKET_MAX) {
      throw new RangeError(`Invalid maximum packet size: ${maxPacketSize}`);
    }
    this.#max = maxPacketSize;
  }

  /** True while a packet is partly received. */
  get pending(): boolean {
    return this.#headLen > 0 || this.#packet !== null;
  }

  /** Yields every packet completed by `chunk`; throws MqttError `protocol` on a bad header. */
  *feed(chunk: Uint8Array): Generator<Uint8Array, void, undefined> {
    let i = 0;
    while (i < chunk.length) {
      const packet = this.#packet;
      if (packet !== null) {
        const n = Math.min(packet.length - this.#filled, chunk.length - i);
        packet.set(chunk.subarray(i, i + n), this.#filled);
        this.#filled += n;
        i += n;
        if (this.#filled === packet.length) {
          this.#packet = null;
          yield packet;
        }
        continue;
      }
      // Fixed header: one byte of type and flags, then 1..4 bytes of Remaining Length.
      const headStart = i - this.#headLen; // where the header began, if it began in this chunk
      this.#head[this.#headLen++] = chunk[i++]!;
      if (this.#headLen === 1) continue;
      const len = decodeVarint(
        this.#head,
        1,
        this.#headLen,
        `${packetName(this.#head[0]! >> 4)} remaining length`,
      );
      if (len === null) continue;
      const total = this.#headLen + len.value;
      if (total > this.#max) {
        throw protocolError(
          "packet_too_large",
          `Cannot receive ${packetName(this.#head[0]! >> 4)}: ${total} bytes, ` +
            `more than the maximum packet size ${this.#max}`,
        );
      }
      const headLen = this.#headLen;
      this.#headLen = 0;
      if (headStart >= 0 && chunk.length - i >= len.value) {
        yield chunk.subarray(headStart, i + len.value);
        i += len.value;
        continue;
      }
      const whole = new Uint8Array(total);
      whole.set(this.#head.subarray(0, headLen));
      if (len.value === 0) {
        yield whole;
        continue;
      }
      this.#packet = whole;
      this.#filled = headLen;
    }
  }
}
