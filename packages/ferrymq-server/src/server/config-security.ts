/**
 * The security keys of the configuration (docs/security.md): CURVE on the Ferry endpoint, the
 * auth file, the address allowlists of the dialects' endpoints, and `insecure`, which lets a
 * broker listen beyond loopback with none of them. Their schema entries join CONFIG_SCHEMA.
 */
import net from 'node:net';
import { FerryError } from 'ferrymq/model';

export interface SecurityConfig {
  /** CURVE on the Ferry endpoint: the file holding the broker's secret key (Z85). */
  curve: { secretKeyFile: string } | undefined;
  /** The auth file: users, their keys and tokens, their grants. */
  authFile: string | undefined;
  /** Listen beyond loopback even with nothing protecting an endpoint. */
  insecure: boolean;
  /** Client addresses (IPs or CIDRs) the Majordomo endpoint accepts; any when undefined. */
  mdpAllow: string[] | undefined;
  /** Client addresses the PZQ endpoints accept; any when undefined. */
  pzqAllow: string[] | undefined;
  /** Client addresses the ZMWS endpoints accept; any when undefined. */
  zmwsAllow: string[] | undefined;
}

interface SecurityKeySpec {
  kind: 'curve' | 'cidrs' | 'string' | 'bool';
  flag: string;
  env: string;
  help: string;
}

const ALLOW_HELP = 'client IPs or CIDRs it accepts, comma-separated (ZAP); any when unset';

export const SECURITY_SCHEMA: Record<keyof SecurityConfig, SecurityKeySpec> = {
  curve: {
    kind: 'curve',
    flag: 'curve-secret-key-file',
    env: 'FERRY_CURVE_SECRET_KEY_FILE',
    help: 'CURVE on the Ferry endpoint: file of the broker secret key (ferry keygen); config {"secretKeyFile"}',
  },
  authFile: {
    kind: 'string',
    flag: 'auth-file',
    env: 'FERRY_AUTH_FILE',
    help: 'auth file: users, CURVE keys, token hashes, grants (docs/security.md); reloaded on SIGHUP',
  },
  insecure: {
    kind: 'bool',
    flag: 'insecure',
    env: 'FERRY_INSECURE',
    help: 'listen beyond loopback even where no CURVE, auth file or allowlist protects it',
  },
  mdpAllow: {
    kind: 'cidrs',
    flag: 'mdp-allow',
    env: 'FERRY_MDP_ALLOW',
    help: `Majordomo: ${ALLOW_HELP}`,
  },
  pzqAllow: {
    kind: 'cidrs',
    flag: 'pzq-allow',
    env: 'FERRY_PZQ_ALLOW',
    help: `PZQ: ${ALLOW_HELP}`,
  },
  zmwsAllow: {
    kind: 'cidrs',
    flag: 'zmws-allow',
    env: 'FERRY_ZMWS_ALLOW',
    help: `ZMWS: ${ALLOW_HELP}`,
  },
};

export const SECURITY_DEFAULTS: SecurityConfig = {
  curve: undefined,
  authFile: undefined,
  insecure: false,
  mdpAllow: undefined,
  pzqAllow: undefined,
  zmwsAllow: undefined,
};

function invalid(where: string, msg: string): FerryError {
  return new FerryError('CONFIG_INVALID', `${where}: ${msg}`);
}

/** `curve`: a file path (flag, environment) or `{"secretKeyFile": path}` (config file). */
export function coerceCurve(
  raw: unknown,
  where: string,
  fromText: boolean,
): SecurityConfig['curve'] {
  if (fromText && typeof raw === 'string' && raw.length > 0) return { secretKeyFile: raw };
  if (!fromText && typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
    const keys = Object.keys(raw);
    const file = (raw as Record<string, unknown>)['secretKeyFile'];
    if (keys.length === 1 && typeof file === 'string' && file.length > 0)
      return { secretKeyFile: file };
  }
  throw invalid(
    where,
    fromText ? 'expected the path of a secret key file' : 'expected {"secretKeyFile": "<path>"}',
  );
}

const MAX_PREFIX = { 4: 32, 6: 128 } as const;

/** One allowlist entry: an IP address, or an address and a prefix length. */
function checkCidr(entry: string, where: string): string {
  const [address, prefix, extra] = entry.split('/');
  const family = net.isIP(address ?? '');
  const bits = prefix === undefined ? undefined : Number(prefix);
  if (
    family === 0 ||
    extra !== undefined ||
    (bits !== undefined && (!/^\d{1,3}$/.test(prefix!) || bits > MAX_PREFIX[family as 4 | 6]))
  )
    throw invalid(where, `${JSON.stringify(entry)} is not an IP address or CIDR (10.0.0.0/8, ::1)`);
  return entry;
}

/** An allowlist: comma-separated text (flag, environment) or an array (config file). */
export function coerceCidrs(raw: unknown, where: string, fromText: boolean): string[] {
  const list: unknown =
    fromText && typeof raw === 'string' ? raw.split(',').map((s) => s.trim()) : raw;
  if (!Array.isArray(list) || list.length === 0 || !list.every((e) => typeof e === 'string'))
    throw invalid(where, 'expected a non-empty list of IP addresses or CIDRs');
  return list.map((e: string) => checkCidr(e, where));
}

/** A matcher for an allowlist checked by {@link coerceCidrs}. */
export function allowlist(entries: readonly string[]): (address: string) => boolean {
  const list = new net.BlockList();
  for (const entry of entries) {
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = net.isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return (address) => {
    const family = net.isIP(address);
    if (family === 0) return false;
    return list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  };
}
