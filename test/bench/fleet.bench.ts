// `pnpm bench fleet`: the fleet simulator's full run (test/fleet/main.ts with its defaults: 10,000 simulated hosts,
// two coordinator processes, placements at 100, 1,000 and 10,000 hosts, the dashboard in headless Chromium).
// Arguments after the file name go to the simulator (`node test/bench/fleet.bench.ts --hosts 1000`).
await import('../fleet/main.ts');
