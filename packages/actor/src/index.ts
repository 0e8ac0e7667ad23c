/** @allot/actor: a small actor runtime (mailbox, ask/tell, deferred replies, supervision). */
export { Actor, Deferred, deferred, deferredUntil } from './actor.ts';
export type { ActorOptions, AskOptions, Behavior, HandlerResult } from './actor.ts';
export { Supervisor } from './supervisor.ts';
export type { CrashReport, SupervisorOptions } from './supervisor.ts';
