/** @allot/core/testing: the ResourceManager contract suite every scope's tests run (vitest). */
export { resourceManagerContract, type ContractSubject } from './resource-manager-contract.ts';
