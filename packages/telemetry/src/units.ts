/** Memory is kept in MiB everywhere in allot; metrics use the base unit, bytes. */
export const MIB_BYTES = 1024 * 1024;

export function mibToBytes(mib: number): number {
  return mib * MIB_BYTES;
}
