/** Reading a child's output line by line as it comes (for tests and benches). */

/**
 * Calls `onLine` with each line of `stream` (UTF-8, without its "\n") as soon as it is whole;
 * resolves when the stream ends. A last piece without "\n" is not a line and is dropped.
 */
export async function eachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
}
