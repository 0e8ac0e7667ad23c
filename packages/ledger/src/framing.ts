import { crc32 } from 'node:zlib';

/*
 * One record on disk (segments) and one snapshot file use the same frame, little endian:
 *
 *   crc32 u32 | payloadLength u32 | seq u64 | batchOffset u32 | payload (msgpack)
 *
 * The CRC covers everything after itself (length, seq, batchOffset, payload), so a damaged length is caught too.
 * batchOffset is the record's position inside the group-commit batch that wrote it (seq - first seq of the batch).
 * It lets recovery tell a torn final batch from real corruption: a batch is written only after the previous one is
 * synced, so a valid record from a LATER batch after a bad one proves the bad one had been acknowledged.
 */
export const FRAME_HEADER_BYTES = 20;
const LENGTH_AT = 4;
const SEQ_AT = 8;
const BATCH_OFFSET_AT = 16;
/** 2^32: seq is stored as two u32 halves because DataView's BigInt accessors are slower and seq fits in 2^53. */
const HALF = 0x1_0000_0000;

/** A frame with its header filled in except the batch offset and CRC, which are known only when its batch is formed. */
export function prepareFrame(seq: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  frame.writeUInt32LE(payload.byteLength, LENGTH_AT);
  frame.writeUInt32LE(Math.floor(seq / HALF), SEQ_AT);
  frame.writeUInt32LE(seq % HALF, SEQ_AT + 4);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** Stamps the batch offset and the CRC; the frame is then final. */
export function sealFrame(frame: Buffer, batchOffset: number): void {
  frame.writeUInt32LE(batchOffset, BATCH_OFFSET_AT);
  frame.writeUInt32LE(crc32(frame.subarray(LENGTH_AT)), 0);
}

/** A frame read back from disk whose CRC matched. `payload` is a view into the file's buffer. */
export interface Frame {
  readonly seq: number;
  /** seq of the first record of the batch this one was written with. */
  readonly batchStart: number;
  readonly payload: Buffer;
  readonly offset: number;
  readonly size: number;
}

/** Reads the frame at `offset`: the frame, `short` (the file ends inside it) or `bad` (implausible length or CRC mismatch). */
export function readFrame(buf: Buffer, offset: number, maxPayloadBytes: number): Frame | 'short' | 'bad' {
  if (buf.length - offset < FRAME_HEADER_BYTES) return 'short';
  const length = buf.readUInt32LE(offset + LENGTH_AT);
  if (length > maxPayloadBytes) return 'bad';
  const end = offset + FRAME_HEADER_BYTES + length;
  if (end > buf.length) return 'short';
  if (crc32(buf.subarray(offset + LENGTH_AT, end)) !== buf.readUInt32LE(offset)) return 'bad';
  const seq = buf.readUInt32LE(offset + SEQ_AT) * HALF + buf.readUInt32LE(offset + SEQ_AT + 4);
  const batchOffset = buf.readUInt32LE(offset + BATCH_OFFSET_AT);
  return { seq, batchStart: seq - batchOffset, payload: buf.subarray(offset + FRAME_HEADER_BYTES, end), offset, size: end - offset };
}

/** How a segment's scan ended. */
export type ScanEnd =
  | { readonly kind: 'clean' }
  /** The tail from `offset` is an unfinished final batch (a crash mid-write): discard it. */
  | { readonly kind: 'torn'; readonly offset: number }
  /** A record that had been acknowledged is damaged or out of sequence at `offset`. */
  | { readonly kind: 'corrupt'; readonly offset: number; readonly reason: string; readonly details: Record<string, unknown> };

export interface SegmentScan {
  readonly frames: Frame[];
  readonly end: ScanEnd;
}

/**
 * Scans a segment whose first record must carry `firstSeq`, each next one seq + 1. The first short or bad frame ends the
 * log. In the last segment that is a torn tail unless a valid record of a later batch follows it; in any other segment
 * (synced before the next one was created) it is always corruption.
 */
export function scanSegment(buf: Buffer, firstSeq: number, isLast: boolean, maxPayloadBytes: number): SegmentScan {
  const frames: Frame[] = [];
  let offset = 0;
  let expected = firstSeq;
  while (offset < buf.length) {
    const frame = readFrame(buf, offset, maxPayloadBytes);
    if (typeof frame === 'string') return { frames, end: classifyBadTail(buf, offset, expected, isLast, maxPayloadBytes, frame) };
    if (frame.seq !== expected) {
      return {
        frames,
        end: {
          kind: 'corrupt',
          offset,
          reason: `record at byte ${offset} has seq ${frame.seq}, expected ${expected}`,
          details: { offset, seq: frame.seq, expectedSeq: expected },
        },
      };
    }
    frames.push(frame);
    offset += frame.size;
    expected += 1;
  }
  return { frames, end: { kind: 'clean' } };
}

function classifyBadTail(
  buf: Buffer,
  offset: number,
  expected: number,
  isLast: boolean,
  maxPayloadBytes: number,
  what: 'short' | 'bad',
): ScanEnd {
  if (!isLast) {
    return {
      kind: 'corrupt',
      offset,
      reason: `record ${expected} at byte ${offset} is ${what} in a segment that was complete`,
      details: { offset, expectedSeq: expected },
    };
  }
  const later = findLaterBatch(buf, offset + 1, expected, maxPayloadBytes);
  if (later === undefined) return { kind: 'torn', offset };
  return {
    kind: 'corrupt',
    offset,
    reason: `record ${expected} at byte ${offset} is ${what} but record ${later.seq} of a later batch follows at byte ${later.offset}`,
    details: { offset, expectedSeq: expected, laterSeq: later.seq, laterOffset: later.offset },
  };
}

/**
 * Looks past a bad frame, byte by byte (its length field cannot be trusted), for a valid frame written by a batch that
 * started after `expected`. Only the tail after a bad frame is searched, which after a crash is at most one batch.
 */
function findLaterBatch(buf: Buffer, from: number, expected: number, maxPayloadBytes: number): Frame | undefined {
  for (let at = from; at + FRAME_HEADER_BYTES <= buf.length; at += 1) {
    const frame = readFrame(buf, at, maxPayloadBytes);
    if (typeof frame === 'string') continue;
    if (frame.seq > expected && frame.batchStart > expected) return frame;
    at += frame.size - 1;
  }
  return undefined;
}
