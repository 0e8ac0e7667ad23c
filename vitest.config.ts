import { defineConfig } from 'vitest/config';

// Three projects: fast in-process tests, and integration tests that start real nats-server, agent and coordinator
// processes (run one file at a time so they do not fight over the 2 cores), and the chaos suite in containers.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          // test/sim: the deterministic simulator's bounded CI run (docs/simulation.md).
          include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'test/sim/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          // test/fuzz: the wire fuzzer's CI-sized run (20,000 messages against real processes).
          include: ['test/integration/**/*.test.ts', 'test/fuzz/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // Containers (docs/chaos.md): a NATS cluster, coordinators and agents under kill, pause, partition, restart.
        test: {
          name: 'chaos',
          include: ['test/chaos/**/*.test.ts'],
          environment: 'node',
          testTimeout: 240_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
