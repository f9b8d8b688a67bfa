export { Transport, TRANSPORT_DEFAULTS } from './transport.js';
export type { TransportOptions, TransportEvents } from './transport.js';
export { Link } from './link.js';
export type { LinkCloseReason, LinkEvents } from './link.js';
export { FrameDecoder, encodeFrame, PROTOCOL_VERSION, HEADER_BYTES } from './frame.js';
export type { Frame } from './frame.js';
export {
  deriveLinkKeys,
  recordKeysFor,
  RecordSealer,
  RecordOpener,
  RECORD_CIPHER,
  DIALER_TO_LISTENER_LABEL,
  LISTENER_TO_DIALER_LABEL,
} from './record-seal.js';
export type { LinkKeys, LinkKeyInputs, RecordKeys } from './record-seal.js';
export {
  FrameType,
  MEMBERSHIP_FRAME_TYPES,
  MESSAGING_FRAME_TYPES,
  HANDSHAKE_FRAME_TYPES,
  isTransportFrameType,
  frameTypeName,
} from './frame-types.js';
export { RateLimitedLogger } from '../logging/rate-limited-logger.js';
export { HeartbeatMonitor } from './heartbeat-monitor.js';
export { formatEndpoint, parseEndpoint } from '../identity/endpoint.js';
