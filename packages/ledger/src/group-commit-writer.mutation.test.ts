import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeValue } from './codec.ts';
import { prepareFrame } from './framing.ts';
import { GroupCommitWriter } from './group-commit.ts';
import type { SegmentFile, SegmentIo } from './segment-file.ts';
import { tempDir } from './testing/temp-dir.ts';

/*
 * The group-commit writer on its own, over an in-memory disk the test controls: durability waiters, drain, the fsync a
 * plain file needs (and an O_DSYNC one does not), rotation, and failing for good. Written against the survivors of a
 * mutation run (docs/benchmarks.md, Mutation testing).
 */

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface FakeFile extends SegmentFile {
  readonly path: string;
  readonly bytes: number[];
  syncs: number;
  closes: number;
}

/** An in-memory disk: every write is held until `release()`, unless `auto`; `writeSize` caps what one write takes. */
function memoryDisk(options: { durableWrites?: boolean; auto?: boolean; writeSizes?: number[] } = {}) {
  const files: FakeFile[] = [];
  const held: Array<() => void> = [];
  let auto = options.auto ?? true;
  const sizes = [...(options.writeSizes ?? [])];
  const io: SegmentIo = {
    async openSegment(path) {
      const file: FakeFile = {
        path,
        bytes: [],
        syncs: 0,
        closes: 0,
        ...(options.durableWrites === undefined ? {} : { durableWrites: options.durableWrites }),
        async write(buffer, position) {
          if (!auto) await new Promise<void>((resolve) => held.push(resolve));
          const n = sizes.length > 0 ? Math.min(sizes.shift() as number, buffer.length) : buffer.length;
          for (let i = 0; i < n; i += 1) file.bytes[position + i] = buffer[i] as number;
          return n;
        },
        async datasync() {
          file.syncs += 1;
        },
        async close() {
          file.closes += 1;
        },
      };
      files.push(file);
      return file;
    },
  };
  return {
    io,
    files,
    hold: () => {
      auto = false;
    },
    release: () => {
      auto = true;
      for (const r of held.splice(0)) r();
    },
    heldWrites: () => held.length,
  };
}

async function writerOn(disk: ReturnType<typeof memoryDisk>, extra: { onFsync?: (ms: number, records: number) => void } = {}) {
  const t = tempDir();
  cleanups.push(t.remove);
  const file = await disk.io.openSegment(join(t.dir, 'log-00000000000000000001.bin'), true);
  const created: Array<{ created: { name: string; firstSeq: number }; closed: { name: string; bytes: number } }> = [];
  const writer = new GroupCommitWriter({
    dir: t.dir,
    io: disk.io,
    segment: { name: 'log-00000000000000000001.bin', firstSeq: 1, file, position: 0 },
    durableSeq: 0,
    ...extra,
    onSegmentCreated: (c, closed) => created.push({ created: c, closed }),
  });
  return { writer, created, dir: t.dir };
}

const frame = (seq: number): Buffer => prepareFrame(seq, encodeValue({ seq }));

/** Lets queued microtasks and already-resolved I/O run. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

function track<T>(p: Promise<T>): { readonly done: boolean; readonly value: T | undefined; readonly error: unknown } {
  const state: { done: boolean; value: T | undefined; error: unknown } = { done: false, value: undefined, error: undefined };
  p.then(
    (v) => {
      state.done = true;
      state.value = v;
    },
    (e: unknown) => {
      state.done = true;
      state.error = e;
    },
  );
  return state;
}

describe('group-commit writer', () => {
  it('whenDurable resolves at once for a durable seq and only once a later one is on disk', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const { writer } = await writerOn(disk);
    await expect(writer.whenDurable(0)).resolves.toBeUndefined();

    disk.hold();
    const one = writer.enqueue(1, frame(1));
    const waitTwo = track(writer.whenDurable(2));
    const waitOne = track(writer.whenDurable(1));
    await settle();
    expect(waitOne.done).toBe(false);
    disk.release();
    expect(await one).toBe(1);
    await settle();
    expect(waitOne.done).toBe(true);
    // Record 2 is not even queued: its waiter stays.
    expect(waitTwo.done).toBe(false);

    expect(await writer.enqueue(2, frame(2))).toBe(2);
    await settle();
    expect(waitTwo).toMatchObject({ done: true, error: undefined });
    expect(writer.durableSeq).toBe(2);
  });

  it('fsyncs a plain file after each batch, and not a file whose writes are already durable', async () => {
    const plain = memoryDisk();
    const a = await writerOn(plain);
    await a.writer.enqueue(1, frame(1));
    await a.writer.enqueue(2, frame(2));
    expect(plain.files[0]?.syncs).toBe(2);

    const dsync = memoryDisk({ durableWrites: true });
    const b = await writerOn(dsync);
    await b.writer.enqueue(1, frame(1));
    expect(dsync.files[0]?.syncs).toBe(0);

    const explicit = memoryDisk({ durableWrites: false });
    const c = await writerOn(explicit);
    await c.writer.enqueue(1, frame(1));
    expect(explicit.files[0]?.syncs).toBe(1);
  });

  it('reports each sync as a plausible duration with the batch size', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const reported: Array<[number, number]> = [];
    const { writer } = await writerOn(disk, { onFsync: (ms, n) => reported.push([ms, n]) });
    const before = performance.now();
    await Promise.all([writer.enqueue(1, frame(1)), writer.enqueue(2, frame(2)), writer.enqueue(3, frame(3))]);
    const took = performance.now() - before;
    expect(reported).toHaveLength(1);
    const [ms, records] = reported[0] as [number, number];
    expect(records).toBe(3);
    // No longer than the whole call took.
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThanOrEqual(took);
    expect(writer.syncLatencyMs.summary().max).toBeLessThanOrEqual(took);
  });

  it('drained waits for a batch in flight', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const { writer } = await writerOn(disk);
    await expect(writer.drained()).resolves.toBeUndefined();
    disk.hold();
    void writer.enqueue(1, frame(1));
    await settle();
    const drained = track(writer.drained());
    await settle();
    expect(drained.done).toBe(false);
    disk.release();
    await settle();
    expect(drained.done).toBe(true);
  });

  it('closeFile closes the segment being written', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const { writer } = await writerOn(disk);
    await writer.closeFile();
    expect(disk.files[0]?.closes).toBe(1);
  });

  it('rotates to a new segment named by its first seq, reporting the closed one with its size', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const { writer, created, dir } = await writerOn(disk);
    const f1 = frame(1);
    await writer.enqueue(1, f1);
    await writer.rotate(2);
    expect(created).toEqual([
      {
        created: { name: 'log-00000000000000000002.bin', firstSeq: 2 },
        closed: { name: 'log-00000000000000000001.bin', bytes: f1.length },
      },
    ]);
    expect(writer.current).toMatchObject({ name: 'log-00000000000000000002.bin', firstSeq: 2, position: 0 });
    expect(disk.files.map((f) => f.path)).toEqual([join(dir, 'log-00000000000000000001.bin'), join(dir, 'log-00000000000000000002.bin')]);
    expect(disk.files[0]?.closes).toBe(1);

    // An empty segment already starting at that seq is kept as it is.
    await writer.rotate(2);
    expect(created).toHaveLength(1);
    expect(disk.files).toHaveLength(2);

    // An empty segment starting elsewhere is replaced.
    await writer.rotate(5);
    expect(created.map((c) => c.created.firstSeq)).toEqual([2, 5]);
    expect(created[1]?.closed).toEqual({ name: 'log-00000000000000000002.bin', bytes: 0 });
  });

  it('a record queued after a rotation goes to the new segment at its start', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const { writer } = await writerOn(disk);
    await writer.enqueue(1, frame(1));
    const rotated = writer.rotate(2);
    const two = writer.enqueue(2, frame(2));
    await rotated;
    expect(await two).toBe(2);
    expect(disk.files[1]?.bytes.length).toBe(frame(2).length);
    expect(writer.current.position).toBe(frame(2).length);
  });

  it('after a write fails, every pending and later call rejects with failed, naming the durable seq', async () => {
    const disk = memoryDisk({ durableWrites: true });
    const { writer } = await writerOn(disk);
    await writer.enqueue(1, frame(1));
    disk.files[0]!.write = async () => {
      throw new Error('EIO');
    };
    const waiter = writer.whenDurable(3);
    const two = writer.enqueue(2, frame(2));
    const three = writer.enqueue(3, frame(3));
    const failed = { code: 'failed', details: { durableSeq: 1 } };
    await expect(two).rejects.toMatchObject(failed);
    await expect(three).rejects.toMatchObject(failed);
    await expect(waiter).rejects.toMatchObject(failed);
    expect(writer.failed?.message).toBe('ledger write failed, reopen it from disk: EIO');
    expect(writer.failed?.details).toEqual({ dir: expect.any(String), durableSeq: 1 });
    expect((writer.failed?.cause as Error | undefined)?.message).toBe('EIO');
    expect(writer.queuedBytes).toBe(0);

    await expect(writer.enqueue(4, frame(4))).rejects.toBe(writer.failed);
    await expect(writer.rotate(4)).rejects.toBe(writer.failed);
    await expect(writer.whenDurable(1)).rejects.toBe(writer.failed);
    await expect(writer.drained()).resolves.toBeUndefined();
  });

  it('names the byte where a write stopped making progress, past what earlier calls wrote', async () => {
    const f1 = frame(1);
    const disk = memoryDisk({ durableWrites: true, writeSizes: [f1.length, 5, 0] });
    const { writer } = await writerOn(disk);
    await writer.enqueue(1, f1);
    await expect(writer.enqueue(2, frame(2))).rejects.toMatchObject({ code: 'failed' });
    expect(writer.failed?.message).toContain(`write made no progress at byte ${f1.length + 5}`);
  });
});
