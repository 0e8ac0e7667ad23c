/** @allot/core/testing: the ResourceManager contract suite every scope's tests run (vitest). */
export { hostReader, resourceManagerContract, type ContractSubject, type ScopeReader } from './resource-manager-contract.ts';
