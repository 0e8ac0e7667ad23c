/**
 * The Docker engine as the chaos suite uses it: a clear failure when none answers, the Ryuk reaper only where its
 * image can be had, and everything the suite creates labelled `allot.chaos` so that set-up and teardown remove it by
 * label, also after a failed or killed run.
 */
import { getContainerRuntimeClient, ImageName, type ContainerRuntimeClient } from 'testcontainers';

/** The reaper image testcontainers 12 starts (its getReaperImage is not exported), or RYUK_CONTAINER_IMAGE. */
function getReaperImage(): string {
  return process.env['RYUK_CONTAINER_IMAGE'] ?? 'testcontainers/ryuk:0.14.0';
}

/** Every container and network the suite creates carries this label (value: the run id). */
export const CHAOS_LABEL = 'allot.chaos';

export type Docker = ContainerRuntimeClient['container']['dockerode'];

let client: ContainerRuntimeClient | undefined;

/**
 * The engine, or an Error saying why there is none and what to do. Never resolves to a silent skip: the suite fails.
 */
export async function engine(): Promise<ContainerRuntimeClient> {
  if (client !== undefined) return client;
  try {
    client = await getContainerRuntimeClient();
  } catch (e) {
    throw new Error(
      `chaos suite: no Docker engine answers (${(e as Error).message.split('\n')[0]}). ` +
        'Run scripts/docker.sh (installs docker.io and starts dockerd --iptables=false --storage-driver=vfs, as root), ' +
        'or point DOCKER_HOST at a Docker or Podman socket; see docs/chaos.md.',
      { cause: e },
    );
  }
  return client;
}

export async function docker(): Promise<Docker> {
  return (await engine()).container.dockerode;
}

/**
 * Disables Ryuk (TESTCONTAINERS_RYUK_DISABLED=true) unless its image is present or can be pulled; the user's own
 * setting wins. Our label-based cleanup does not depend on it either way.
 */
export async function configureReaper(): Promise<string> {
  if (process.env['TESTCONTAINERS_RYUK_DISABLED'] !== undefined)
    return `ryuk: TESTCONTAINERS_RYUK_DISABLED=${process.env['TESTCONTAINERS_RYUK_DISABLED']} (set by the user)`;
  const c = await engine();
  const image = getReaperImage();
  if (await c.image.exists(ImageName.fromString(image))) return `ryuk: ${image} present`;
  const pulled = await Promise.race([
    c.image.pull(ImageName.fromString(image)).then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 15_000).unref()),
  ]);
  if (pulled) return `ryuk: pulled ${image}`;
  process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true';
  return `ryuk: disabled (${image} cannot be pulled); containers and networks are removed by the ${CHAOS_LABEL} label`;
}

/** Removes every container (with its anonymous volumes) and network labelled allot.chaos, whatever run made them. */
export async function removeLabelled(): Promise<{ containers: number; networks: number }> {
  const d = await docker();
  const filters = JSON.stringify({ label: [CHAOS_LABEL] });
  const containers = await d.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((c) =>
      d
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => undefined),
    ),
  );
  const networks = await d.listNetworks({ filters });
  for (const n of networks)
    await d
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
  return { containers: containers.length, networks: networks.length };
}

/** A container's whole log (stdout and stderr, every start), demultiplexed into text lines. */
export async function containerLogLines(d: Docker, id: string): Promise<string[]> {
  const raw = (await d.getContainer(id).logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  const parts: string[] = [];
  let at = 0;
  // Without a TTY the engine frames each chunk: [stream, 0, 0, 0, size (uint32 BE)] then size bytes.
  while (at + 8 <= raw.length) {
    const size = raw.readUInt32BE(at + 4);
    parts.push(raw.subarray(at + 8, at + 8 + size).toString('utf8'));
    at += 8 + size;
  }
  return parts
    .join('')
    .split('\n')
    .filter((l) => l !== '');
}
