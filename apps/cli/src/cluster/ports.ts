import { createServer } from 'node:net';

/** Whether 127.0.0.1:port can be listened on now; the reason in words when not. */
export function portIsFree(port: number): Promise<{ free: true } | { free: false; reason: string }> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (e: NodeJS.ErrnoException) => {
      resolve({ free: false, reason: e.code === 'EADDRINUSE' ? 'already in use' : e.message });
    });
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.close(() => resolve({ free: true }));
    });
  });
}
