/**
 * Time inside a coordinator. `monotonic` measures every duration and age inside the process (liveness, reconcile and
 * sweep grace periods, rate limits): a wall-clock step never moves it. `wall` stamps instants that other processes
 * or later restarts read (`updatedAt` in an intent, for operators); no decision compares another process's `wall` with
 * this one's.
 */
export interface CoordinatorClock {
  wall(): number;
  monotonic(): number;
}

export const systemCoordinatorClock: CoordinatorClock = {
  wall: () => Date.now(),
  monotonic: () => performance.now(),
};
