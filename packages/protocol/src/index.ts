/**
 * @allot/protocol: the wire. Every message that crosses NATS as a zod schema (request and reply per verb), the subject
 * scheme, the msgpack codec. The domain it carries is @allot/core's; the dashboard's HTTP API is @allot/protocol/http.
 */
export * from './wire.ts';
export * from './subjects.ts';
export * from './codec.ts';
