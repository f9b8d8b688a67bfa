import { Logger, type LoggerService } from '@nestjs/common';
import { MissingPackageError } from '../errors/missing-package.error.js';

/** What this library needs from the EC2 instance metadata service (IMDS). */
export interface InstanceMetadata {
  /** `meta-data/instance-id`, e.g. `i-0abc123def4567890`. */
  instanceId: string;
  /** `meta-data/placement/region`, e.g. `eu-west-1`. */
  region: string;
  /** `meta-data/local-ipv4`: the instance's private IPv4 address, the host part of its node name. */
  localIpv4: string;
}

/** Options of {@link readInstanceMetadata}. */
export interface ReadInstanceMetadataOptions {
  /**
   * Deadline of each HTTP request to the metadata service, ms. The whole lookup (token,
   * IMDSv1 fallback, three paths) is bounded by three times this value.
   * @default 1000
   */
  timeoutMs?: number;
  /**
   * Base URL of the metadata service.
   * @default `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else the SDK's default (`http://169.254.169.254`)
   */
  endpoint?: string;
  /** Where the "metadata unreachable" warning goes. @default a Nest `Logger('InstanceMetadata')` */
  logger?: Pick<LoggerService, 'warn'> & Partial<Pick<LoggerService, 'debug'>>;
  /** Seam: loads `@aws-sdk/ec2-metadata-service`. @default `import('@aws-sdk/ec2-metadata-service')` */
  loadSdk?: () => Promise<MetadataSdkModule>;
}

/** The part of `@aws-sdk/ec2-metadata-service` this reader uses (spelled out: the package is optional). */
export interface MetadataSdkModule {
  MetadataService: new (options: {
    endpoint?: string;
    httpOptions?: { timeout?: number };
    retries?: number;
    backoff?: number;
  }) => { request(path: string, options: object): Promise<string> };
}

/** Default deadline of one metadata request: IMDS answers in milliseconds when it exists at all. */
const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_ENDPOINT = 'http://169.254.169.254';
const PATHS = {
  instanceId: 'latest/meta-data/instance-id',
  region: 'latest/meta-data/placement/region',
  localIpv4: 'latest/meta-data/local-ipv4',
} as const;

/**
 * Reads this instance's id, region and private IPv4 address from the EC2 instance metadata
 * service with `@aws-sdk/ec2-metadata-service`: IMDSv2 first (a session token from
 * `PUT /latest/api/token`), falling back to IMDSv1 when the token request is refused or
 * times out (the package's own behaviour; `AWS_EC2_METADATA_V1_DISABLED=true` turns the
 * fallback off). The endpoint honours `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
 *
 * Never throws: when the service is unreachable (not on EC2, a container with the IMDSv2
 * hop limit at 1, an outage), it logs one warning and resolves `null`, and the node name
 * falls back to `HOSTNAME`. `AWS_EC2_METADATA_DISABLED=true` skips the service the same way,
 * as it does for the rest of the AWS SDK. Every request has a short deadline, so a missing service costs
 * at most three times `timeoutMs`.
 *
 * @example
 * const metadata = await readInstanceMetadata({ timeoutMs: 500 });
 * const host = metadata?.localIpv4 ?? process.env.HOSTNAME;
 */
export async function readInstanceMetadata(
  options: ReadInstanceMetadataOptions = {},
): Promise<InstanceMetadata | null> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const logger = options.logger ?? new Logger('InstanceMetadata');
  const configured = options.endpoint ?? process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  const shownEndpoint = configured ?? DEFAULT_ENDPOINT;
  if (process.env.AWS_EC2_METADATA_DISABLED?.toLowerCase() === 'true') {
    logger.warn(
      'instance metadata disabled by AWS_EC2_METADATA_DISABLED; falling back to HOSTNAME for the node name',
    );
    return null;
  }

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${3 * timeoutMs} ms`)),
      3 * timeoutMs,
    );
    timer.unref();
  });
  try {
    const lookup = (async (): Promise<InstanceMetadata> => {
      const { MetadataService } = await loadMetadataSdk(options.loadSdk);
      const service = new MetadataService({
        // The service appends the path to the endpoint's path: a base ending in '/' and
        // relative paths give `/latest/meta-data/...` (the default endpoint's path is '/').
        endpoint: configured === undefined ? undefined : withTrailingSlash(configured),
        httpOptions: { timeout: timeoutMs },
        retries: 1,
        backoff: 0.05,
      });
      const get = async (path: string): Promise<string> => {
        const value = (await service.request(path, {})).trim();
        if (value === '') throw new Error(`empty answer for ${path}`);
        return value;
      };
      // The first request settles IMDSv2 vs IMDSv1: once the token request is refused, the
      // service stops asking for one, so the other two go straight to IMDSv1.
      const instanceId = await get(PATHS.instanceId);
      const [region, localIpv4] = await Promise.all([get(PATHS.region), get(PATHS.localIpv4)]);
      return { instanceId, region, localIpv4 };
    })();
    lookup.catch(() => undefined); // settled by the race below; never an unhandled rejection
    const metadata = await Promise.race([lookup, deadline]);
    options.logger?.debug?.(
      `instance metadata: ${metadata.instanceId} in ${metadata.region}, local-ipv4 ${metadata.localIpv4}`,
    );
    return metadata;
  } catch (err) {
    if (err instanceof MissingPackageError) {
      logger.warn(`${err.message}; falling back to HOSTNAME for the node name`);
      return null;
    }
    const reason = err instanceof Error ? err.message : String(err);
    logger.warn(
      `instance metadata unreachable at ${shownEndpoint} (${reason}); ` +
        'falling back to HOSTNAME for the node name',
    );
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Loads the metadata SDK only when asked; "module not found" becomes a {@link MissingPackageError}. */
async function loadMetadataSdk(
  load?: () => Promise<MetadataSdkModule>,
): Promise<MetadataSdkModule> {
  try {
    return await (load ?? (() => import('@aws-sdk/ec2-metadata-service')))();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new MissingPackageError(
        '@aws-sdk/ec2-metadata-service',
        'reading the EC2 instance metadata (the ec2 strategy)',
        err,
      );
    }
    throw err;
  }
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
