/** What the numbers were measured on: CPU, cores, memory, Node, kernel, file system. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  totalMemBytes: number;
  node: string;
  platform: string;
  kernel: string;
  /** File system of the folder holding the data dirs: device, type, mount point. */
  dataFs: { mount: string; type: string; device: string } | null;
}

function cpuModel(): string {
  try {
    const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
    const m = /^model name\s*:\s*(.+)$/m.exec(text);
    if (m?.[1]) return m[1].trim();
  } catch {
    /* not Linux */
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** The mount holding `dir` (longest mount-point prefix in /proc/mounts). */
function fsOf(dir: string): MachineInfo['dataFs'] {
  let best: MachineInfo['dataFs'] = null;
  try {
    const real = fs.realpathSync(dir);
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [device, mount, type] = line.split(' ');
      if (!device || !mount || !type) continue;
      const inside = mount === '/' || real === mount || real.startsWith(mount + path.sep);
      if (inside && (!best || mount.length >= best.mount.length)) best = { mount, type, device };
    }
  } catch {
    /* not Linux */
  }
  return best;
}

export function machineInfo(dataParent: string): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    totalMemBytes: os.totalmem(),
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
    kernel: os.release(),
    dataFs: fsOf(dataParent),
  };
}

const USER_HZ = 100;

/** CPU seconds the whole machine spent busy (all cores; not idle, not iowait) so far. */
export function machineBusySeconds(): number {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal …
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0);
    return busy / USER_HZ;
  } catch {
    return NaN;
  }
}

/** CPU seconds of this process plus its reaped children (the broker, once it has exited). */
export function selfAndChildrenSeconds(): number {
  try {
    const text = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // utime stime cutime cstime are fields 14–17, i.e. 11–14 after the command name.
    return ((f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0)) / USER_HZ;
  } catch {
    return NaN;
  }
}

/**
 * Waits until processes other than this one (and its reaped children) use less than
 * `maxPercent` of a core over a `windowMs` window, for at most `maxWaitMs`. Returns the load
 * of the last window (% of one core) and how long it waited.
 */
export async function waitForQuiet(
  maxPercent: number,
  maxWaitMs: number,
  windowMs = 500,
): Promise<{ otherPercent: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const busy0 = machineBusySeconds();
    const own0 = selfAndChildrenSeconds();
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, windowMs));
    const other = machineBusySeconds() - busy0 - (selfAndChildrenSeconds() - own0);
    const otherPercent = Math.max(0, (other * 100_000) / (Date.now() - w0));
    const waitedMs = Date.now() - t0;
    if (!(otherPercent >= maxPercent) || waitedMs >= maxWaitMs) return { otherPercent, waitedMs };
  }
}
