import type { MemorySample } from '@allot/core';

/**
 * MemTotal and MemAvailable from /proc/meminfo, in integer MiB (floor). used = total - available, as `free` reports
 * it: page cache the kernel can drop is not counted as used. Returns undefined when either line is missing
 * (kernels before 3.14 have no MemAvailable) so the caller can fall back rather than invent a figure.
 */
export function parseMeminfo(text: string): MemorySample | undefined {
  let totalKiB: number | undefined;
  let availableKiB: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('MemTotal:')) totalKiB = kibOf(line);
    else if (line.startsWith('MemAvailable:')) availableKiB = kibOf(line);
    if (totalKiB !== undefined && availableKiB !== undefined) break;
  }
  if (totalKiB === undefined || availableKiB === undefined) return undefined;
  return memorySampleFromBytes(totalKiB * 1024, availableKiB * 1024);
}

function kibOf(line: string): number | undefined {
  const match = /:\s*(\d+)\s*kB/.exec(line);
  return match ? Number(match[1]) : undefined;
}

const MIB = 1024 * 1024;

/** Bytes to the integer MiB sample; available is clamped to total so used never goes negative. */
export function memorySampleFromBytes(totalBytes: number, availableBytes: number): MemorySample {
  const totalMiB = Math.floor(totalBytes / MIB);
  const availableMiB = Math.min(totalMiB, Math.max(0, Math.floor(availableBytes / MIB)));
  return { totalMiB, usedMiB: totalMiB - availableMiB, availableMiB };
}
