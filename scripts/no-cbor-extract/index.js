// cbor-x catches this and uses its pure JavaScript decoder (see package.json).
throw new Error("cbor-extract is disabled in linkd: cbor-x runs in pure JavaScript");
