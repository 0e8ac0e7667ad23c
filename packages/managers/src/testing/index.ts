/** @allot/managers/testing: what tests and the simulator drive a HostManager with (a clock, a probe, a journal they control). */
export { FakeClock } from './fake-clock.ts';
export { FakeProbe } from './fake-probe.ts';
export { HeldJournal } from './held-journal.ts';
