import { open } from 'node:fs/promises';

/** The few file operations the writer needs; an interface so tests can inject a disk that fails. */
export interface SegmentFile {
  /** Writes at `position`; may write fewer bytes than asked (like pwrite(2)). */
  write(buffer: Buffer, position: number): Promise<number>;
  /** fdatasync(2): the data and the size are on disk when it resolves. */
  datasync(): Promise<void>;
  close(): Promise<void>;
}

/** Opens segment files. `create` opens a new one exclusively (it must not exist); otherwise an existing one for writing. */
export interface SegmentIo {
  openSegment(path: string, create: boolean): Promise<SegmentFile>;
}

/** The real disk, through fs.promises: writes and fsyncs run on libuv's thread pool, off the event loop. */
export const nodeSegmentIo: SegmentIo = {
  async openSegment(path, create) {
    const handle = await open(path, create ? 'wx' : 'r+');
    return {
      write: async (buffer, position) => (await handle.write(buffer, 0, buffer.length, position)).bytesWritten,
      datasync: () => handle.datasync(),
      close: () => handle.close(),
    };
  },
};
