import { execFileSync } from 'node:child_process';

/**
 * Simulated hosts for multi-host cluster tests: one network namespace per host, each with a
 * veth pair into a bridge that itself lives in a namespace the test created. Addresses come
 * from 198.18.0.0/15 (reserved for benchmarking), multicast is routed to the host's veth,
 * and nothing is attached to the machine's real interfaces, so no packet can leave.
 *
 * Needs root and iproute2; `available()` says whether this machine can run it.
 */
/** Address of the test process on the lab's bridge. */
export const OBSERVER_ADDRESS = '198.18.0.254';

export class NetnsLab {
  readonly hosts: { ns: string; address: string; veth: string }[] = [];
  private readonly prefix: string;
  private readonly bridgeNs: string;
  private created = false;
  private observer: string | undefined;

  constructor(readonly count: number) {
    this.prefix = `nc${process.pid % 100000}${Math.floor(Math.random() * 1000)}`;
    this.bridgeNs = `${this.prefix}-br`;
  }

  /** True when running as root, inside the test run's own namespace, with `ip netns` working. */
  static available(): boolean {
    if (process.getuid?.() !== 0 || process.env.CLUSTER_TEST_NETNS !== '1') return false;
    try {
      execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  create(): this {
    this.created = true;
    ip('netns', 'add', this.bridgeNs);
    ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up');
    ip('-n', this.bridgeNs, 'link', 'set', 'lo', 'up');
    for (let i = 0; i < this.count; i++) {
      const ns = `${this.prefix}-h${i + 1}`;
      const address = `198.18.0.${i + 1}`;
      const inner = `eth0`;
      const outer = `vh${i + 1}`;
      ip('netns', 'add', ns);
      // Create the pair inside the bridge namespace, then move one end into the host.
      ip('-n', this.bridgeNs, 'link', 'add', outer, 'type', 'veth', 'peer', 'name', `tmp${i + 1}`);
      ip('-n', this.bridgeNs, 'link', 'set', `tmp${i + 1}`, 'netns', ns);
      ip('-n', ns, 'link', 'set', `tmp${i + 1}`, 'name', inner);
      ip('-n', this.bridgeNs, 'link', 'set', outer, 'master', 'br0');
      ip('-n', this.bridgeNs, 'link', 'set', outer, 'up');
      ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', inner);
      ip('-n', ns, 'link', 'set', inner, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', inner);
      this.hosts.push({ ns, address, veth: outer });
    }
    // The test process itself gets a port on the bridge too (198.18.0.254), so it can reach
    // the hosts' HTTP APIs. Only allowed inside a namespace the test run made itself.
    if (process.env.CLUSTER_TEST_NETNS === '1') {
      ip(
        '-n',
        this.bridgeNs,
        'link',
        'add',
        'vobs',
        'type',
        'veth',
        'peer',
        'name',
        `${this.prefix}o`,
      );
      ip('-n', this.bridgeNs, 'link', 'set', `${this.prefix}o`, 'netns', String(process.pid));
      ip('-n', this.bridgeNs, 'link', 'set', 'vobs', 'master', 'br0');
      ip('-n', this.bridgeNs, 'link', 'set', 'vobs', 'up');
      ip('addr', 'add', `${OBSERVER_ADDRESS}/24`, 'dev', `${this.prefix}o`);
      ip('link', 'set', `${this.prefix}o`, 'up');
      this.observer = `${this.prefix}o`;
    }
    return this;
  }

  /** Command prefix that runs a program on host `i` (0-based). */
  exec(i: number): string[] {
    return ['ip', 'netns', 'exec', this.hosts[i].ns];
  }

  /** Cuts host `i` off the network (its bridge port goes down). */
  cut(i: number): void {
    ip('-n', this.bridgeNs, 'link', 'set', this.hosts[i].veth, 'down');
  }

  /** Reconnects host `i`. */
  restore(i: number): void {
    ip('-n', this.bridgeNs, 'link', 'set', this.hosts[i].veth, 'up');
  }

  /** True when `iptables` is installed (one-way loss and split partitions need it). */
  static hasIptables(): boolean {
    try {
      execFileSync('iptables', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Host `i` drops every packet from host `from` (iptables inside host `i`'s namespace only):
   * one-way loss, `from` → `i`.
   */
  dropFrom(i: number, from: number): void {
    execFileSync(
      'ip',
      [
        ...['netns', 'exec', this.hosts[i].ns],
        ...['iptables', '-A', 'INPUT', '-s', this.hosts[from].address, '-j', 'DROP'],
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  }

  /** Splits the hosts into groups that cannot reach each other, both ways (until `heal`). */
  split(...groups: number[][]): void {
    for (const [g, group] of groups.entries()) {
      for (const other of groups.slice(g + 1)) {
        for (const a of group) {
          for (const b of other) {
            this.dropFrom(a, b);
            this.dropFrom(b, a);
          }
        }
      }
    }
  }

  /** Removes every drop rule of `split` and `dropFrom`. */
  heal(): void {
    for (const h of this.hosts) {
      execFileSync('ip', ['netns', 'exec', h.ns, 'iptables', '-F', 'INPUT'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    }
  }

  /** Removes every namespace this lab created (and with them their interfaces). */
  destroy(): void {
    if (!this.created) return;
    if (this.observer) tryIp('link', 'del', this.observer);
    for (const h of this.hosts) tryIp('netns', 'del', h.ns);
    tryIp('netns', 'del', this.bridgeNs);
    this.hosts.length = 0;
    this.created = false;
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // already gone
  }
}
