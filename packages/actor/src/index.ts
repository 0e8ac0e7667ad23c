/** @allot/actor: a small actor runtime (mailbox, ask/tell, deferred replies, supervision). */
export { Actor } from './actor.ts';
export type { ActorOptions, AskOptions } from './actor.ts';
export { Deferred, deferred, deferredUntil } from './behavior.ts';
export type { Behavior, HandlerResult } from './behavior.ts';
export { Supervisor } from './supervisor.ts';
export type { CrashReport, SupervisorOptions } from './supervisor.ts';
