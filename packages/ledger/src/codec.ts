import { Packr } from 'msgpackr';

/**
 * Records and snapshots are msgpack with plain maps (no msgpackr records extension): any msgpack reader can inspect a
 * ledger, and the bytes do not depend on which structures this process happened to see first.
 */
const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

export function encodeValue(value: unknown): Buffer {
  return packr.pack(value);
}

export function decodeValue(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
