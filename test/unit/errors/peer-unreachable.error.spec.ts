import { describe, expect, it } from 'vitest';
import { PeerUnreachableError } from '../../../lib/errors/peer-unreachable.error.js';

describe('PeerUnreachableError', () => {
  it('a host name that does not resolve points at HOSTNAME and the advertised address', () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN']) {
      const error = new PeerUnreachableError('ip-10-0-1-7', 45893, code);
      expect(error.reason).toBe('dns');
      expect(error.message).toMatch(/^cannot resolve host ip-10-0-1-7 \(E[A-Z_]+\): /);
      expect(error.message).toContain('check HOSTNAME / the advertised address');
      expect(error.message).toContain('CLUSTER_ADVERTISE_ADDRESS');
      expect(error.message).not.toMatch(/security group|firewall/);
      expect(error.retryable).toBe(true);
    }
  });

  it('a refused connection asks whether the other node runs with that CLUSTER_PORT', () => {
    const error = new PeerUnreachableError('10.0.1.7', 4000, 'ECONNREFUSED');
    expect(error.reason).toBe('refused');
    expect(error.message).toBe(
      'nothing listens on 10.0.1.7:4000 (ECONNREFUSED): is the other node running with CLUSTER_PORT=4000?',
    );
  });

  it('a timeout points at a firewall or security group dropping the port', () => {
    const error = new PeerUnreachableError('fd00::7', 45893, 'ETIMEDOUT');
    expect(error.reason).toBe('timeout');
    expect(error.peer).toBe('[fd00::7]:45893');
    expect(error.message).toBe(
      'no answer from [fd00::7]:45893 (ETIMEDOUT): a firewall or security group drops TCP port 45893 between the nodes — allow it inbound from the other nodes',
    );
  });

  it('no route names routes and the advertised address; other codes keep the general hint', () => {
    const noRoute = new PeerUnreachableError('10.9.9.9', 45893, 'EHOSTUNREACH');
    expect(noRoute.reason).toBe('no-route');
    expect(noRoute.message).toMatch(/^no route to 10\.9\.9\.9:45893 \(EHOSTUNREACH\): /);
    const other = new PeerUnreachableError('10.0.1.7', 45893, 'ECONNRESET');
    expect(other.reason).toBe('other');
    expect(other.message).toContain('cannot reach 10.0.1.7:45893 (ECONNRESET)');
    expect(other.message).toContain('TCP port 45893');
  });

  it('running out of file descriptors names the open-files limit, not the peer', () => {
    for (const code of ['EMFILE', 'ENFILE']) {
      const error = new PeerUnreachableError('10.0.1.7', 45893, code);
      expect(error.reason).toBe('descriptors');
      expect(error.message).toContain(`no file descriptor left to dial 10.0.1.7:45893 (${code})`);
      expect(error.message).toContain('ulimit -n');
      expect(error.message).not.toMatch(/security group|firewall/);
    }
  });
});
