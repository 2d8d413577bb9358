/**
 * The answer http1Fetch gives: status, headers and a pulled body, with the reading methods of a
 * `Response` a caller may want (`text`, `json`, `arrayBuffer`), without being one: Deno's
 * `Response`, `Headers` and streams cost the daemon 2.5 MiB of peak memory over 1000 refreshes.
 * It satisfies `FetchResponse` (src/auth/types.ts), all linkd reads.
 */
import type { FetchResponse } from "../auth/types.ts";
import { ByteBuilder } from "../bytes.ts";
import type { Http1Body } from "./_body.ts";

/** Response header fields, read as `Headers` reads them. */
export class Http1Headers {
  /** Lower-case name → value; repeated fields joined with ", " (as `Headers.get` does). */
  readonly #fields = new Map<string, string>();

  constructor(fields: Iterable<readonly [string, string]>) {
    for (const [name, value] of fields) {
      const key = name.toLowerCase();
      const had = this.#fields.get(key);
      this.#fields.set(key, had === undefined ? value : `${had}, ${value}`);
    }
  }

  /** The field's value (names are case-insensitive), or null. */
  get(name: string): string | null {
    return this.#fields.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.#fields.has(name.toLowerCase());
  }

  /** [lower-case name, value] pairs, sorted by name, as `Headers` iterates. */
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    yield* [...this.#fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }
}

export class Http1Response implements FetchResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: Http1Headers;
  /** Null when the answer has no body (HEAD, 204, 304, or Content-Length 0). */
  readonly body: Http1Body | null;
  #used = false;

  constructor(status: number, statusText: string, headers: Http1Headers, body: Http1Body | null) {
    this.status = status;
    this.statusText = statusText;
    this.headers = headers;
    this.body = body;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status <= 299;
  }

  /** The whole body (unbounded: linkd's own reads go through postForm's bound). */
  async bytes(): Promise<Uint8Array> {
    if (this.#used) throw new TypeError("Body already consumed");
    this.#used = true;
    if (this.body === null) return new Uint8Array(0);
    const all = new ByteBuilder();
    for (let step = await this.body.read(); !step.done; step = await this.body.read()) {
      if (step.value) all.append(step.value);
    }
    return all.bytes();
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const b = await this.bytes();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  /** The body as UTF-8 text, bad bytes replaced (as `Response.text`). */
  async text(): Promise<string> {
    return new TextDecoder().decode(await this.bytes());
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}
