/*
 * What the KV writes of a place cost alone, on one server (the bucket with 1 replica, file storage: nats-server stages
 * each atomic batch in a new file store) and on a 3-server cluster (3 replicas: batches staged in memory, every write
 * replicated). Prints figures; asserts nothing.
 *   node apps/coordinator/bench/batch.bench.ts [count=2000] [batchWindow=16]
 */
import { cleanupAll, startNatsCluster, startNatsServer } from '../../../test/harness/index.ts';
import { connectTo } from '../src/testing/cluster.ts';
import { measureKvAlone } from './kv-alone.ts';

const COUNT = Number(process.argv[2] ?? 2000);
const BATCH_WINDOW = Number(process.argv[3] ?? 16);

try {
  const single = await startNatsServer();
  const nc1 = await connectTo(single.url, 'bench-batch-r1');
  console.log(
    JSON.stringify({
      replicas: 1,
      servers: 1,
      ...(await measureKvAlone(nc1, { tag: 'r1', replicas: 1, count: COUNT, batchWindow: BATCH_WINDOW, casWindow: 256 })),
    }),
  );
  await nc1.close();
  await single.stop();

  const cluster = await startNatsCluster(3);
  await cluster.metaLeader();
  const nc3 = await connectTo(cluster.urls[0] as string, 'bench-batch-r3');
  console.log(
    JSON.stringify({
      replicas: 3,
      servers: 3,
      ...(await measureKvAlone(nc3, { tag: 'r3', replicas: 3, count: COUNT, batchWindow: BATCH_WINDOW, casWindow: 256 })),
    }),
  );
  await nc3.close();
} finally {
  await cleanupAll();
}
